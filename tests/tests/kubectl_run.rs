//! The README's `kubectl run` one-liner works as written: the pod the line creates (built here as
//! kubectl builds it, from the flags of the README line itself) runs as the volunteer's service
//! account with its token mounted, meets the rules of its namespace's `restricted` pod-security
//! level that such a pod can break, is bound to the volunteer's ClusterRole, and passes flags the
//! volunteer accepts. (kubectl itself is not needed: its pod and patch are modelled here.)

use std::collections::BTreeMap;

use clap::Parser;
use e2e::workspace;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use serde::Deserialize;
use serde_json::{Value, json};

/// Every `kubectl run` command of the README, continued lines joined.
fn documented_commands() -> Vec<String> {
    let readme = e2e::readme();
    let mut commands = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        let line = line.trim();
        if current.is_none() && !line.starts_with("kubectl run ") {
            continue;
        }
        let command = current.get_or_insert_with(String::new);
        match line.strip_suffix('\\') {
            Some(start) => command.push_str(start),
            None => {
                command.push_str(line);
                commands.push(current.take().unwrap());
            }
        }
    }
    commands
}

/// What one `kubectl run` line says.
#[derive(Debug, Default)]
struct Run {
    name: String,
    namespace: Option<String>,
    image: Option<String>,
    override_type: Option<String>,
    overrides: Option<Value>,
    args: Vec<String>,
}

fn parse(command: &str) -> Run {
    let words = shlex::split(command).unwrap_or_else(|| panic!("not shell words: {command}"));
    assert_eq!(&words[..2], ["kubectl", "run"], "{command}");
    let mut run = Run::default();
    let mut words = words.into_iter().skip(2);
    while let Some(word) = words.next() {
        let (flag, value) = match word.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (word.clone(), None),
        };
        let mut value = || value.clone().or_else(|| words.next()).unwrap();
        match flag.as_str() {
            "--" => {
                run.args = words.by_ref().collect();
            }
            "--namespace" | "-n" => run.namespace = Some(value()),
            "--image" => run.image = Some(value()),
            "--override-type" => run.override_type = Some(value()),
            "--overrides" => run.overrides = Some(serde_json::from_str(&value()).unwrap()),
            other if other.starts_with('-') => panic!("a flag this test does not model: {other}"),
            name => run.name = name.to_string(),
        }
    }
    run
}

/// The pod kubectl builds for `run` (`kubectl run` names the pod and its one container after
/// the first argument, labels it `run=<name>`), with its overrides applied.
fn pod(run: &Run) -> Pod {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": run.name, "labels": {"run": run.name}},
        "spec": {
            "containers": [{"name": run.name, "image": run.image, "args": run.args}],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
        },
    });
    if let Some(namespace) = &run.namespace {
        pod["metadata"]["namespace"] = json!(namespace);
    }
    if let Some(overrides) = &run.overrides {
        let strategic = run.override_type.as_deref() == Some("strategic");
        merge(&mut pod, overrides, strategic);
    }
    serde_json::from_value(pod).expect("the pod is a Pod")
}

/// Lists a strategic merge merges item by item, by `name` (their merge key); it replaces others.
const MERGED_BY_NAME: [&str; 5] = [
    "containers",
    "initContainers",
    "volumes",
    "env",
    "volumeMounts",
];

/// kubectl's patch of the generated object: a JSON merge patch (RFC 7386: objects merge, `null`
/// deletes, anything else replaces), or with `strategic` one that also merges the lists of
/// [`MERGED_BY_NAME`] item by item.
fn merge(target: &mut Value, patch: &Value, strategic: bool) {
    let (Value::Object(target), Value::Object(patch)) = (&mut *target, patch) else {
        *target = patch.clone();
        return;
    };
    for (key, value) in patch {
        match (target.get_mut(key), value) {
            (_, Value::Null) => {
                target.remove(key);
            }
            (Some(Value::Array(items)), Value::Array(patches))
                if strategic && MERGED_BY_NAME.contains(&key.as_str()) =>
            {
                for patch in patches {
                    match items.iter_mut().find(|item| item["name"] == patch["name"]) {
                        Some(item) => merge(item, patch, strategic),
                        None => items.push(patch.clone()),
                    }
                }
            }
            (Some(existing), _) => merge(existing, value, strategic),
            (None, _) => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The objects of manifests/volunteer that the line relies on.
fn volunteer_manifests() -> (Namespace, ServiceAccount, ClusterRoleBinding) {
    let dir = workspace().join("manifests/volunteer");
    let namespace: Namespace =
        serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("namespace.yaml")).unwrap())
            .unwrap();
    let text = std::fs::read_to_string(dir.join("rbac.yaml")).unwrap();
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).unwrap())
        .collect();
    let of_kind = |kind: &str| {
        documents
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("rbac.yaml has no {kind}"))
            .clone()
    };
    (
        namespace,
        serde_json::from_value(of_kind("ServiceAccount")).unwrap(),
        serde_json::from_value(of_kind("ClusterRoleBinding")).unwrap(),
    )
}

#[test]
fn the_documented_one_liner_makes_a_pod_that_can_report() {
    let commands = documented_commands();
    assert!(!commands.is_empty(), "the README has no kubectl run line");
    let readme = e2e::readme();
    let prepared = readme
        .find(
            "kubectl apply -f manifests/volunteer/namespace.yaml -f manifests/volunteer/rbac.yaml",
        )
        .expect("the README applies the volunteer's namespace and RBAC");
    assert!(
        prepared < readme.find("kubectl run ").unwrap(),
        "before the kubectl run line"
    );
    let (namespace, account, binding) = volunteer_manifests();
    for command in commands {
        let run = parse(&command);
        let pod = pod(&run);
        let spec = pod.spec.as_ref().unwrap();
        let pod_namespace = pod.metadata.namespace.clone().unwrap_or("default".into());
        // It runs as the volunteer's service account, in the account's namespace.
        assert_eq!(
            spec.service_account_name.as_deref(),
            account.metadata.name.as_deref(),
            "{command}"
        );
        assert_eq!(
            Some(&pod_namespace),
            account.metadata.namespace.as_ref(),
            "{command}"
        );
        assert_eq!(Some(&pod_namespace), namespace.metadata.name.as_ref());
        // A token is mounted: the account itself does not mount one.
        let mounted = spec
            .automount_service_account_token
            .or(account.automount_service_account_token)
            .unwrap_or(true);
        assert!(mounted, "no service-account token: {command}");
        // The account is bound to the volunteer's ClusterRole.
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        assert_eq!(binding.role_ref.name, volunteer::rbac::ROLE_NAME);
        assert!(
            binding.subjects.iter().flatten().any(|subject| {
                subject.kind == "ServiceAccount"
                    && Some(&subject.name) == spec.service_account_name.as_ref()
                    && subject.namespace.as_ref() == Some(&pod_namespace)
            }),
            "{binding:?}"
        );
        assert_restricted(&pod, &namespace, &command);
        // The container is the volunteer, with flags it accepts.
        let container = &spec.containers[0];
        assert_eq!(spec.containers.len(), 1);
        assert!(container.image.as_deref().unwrap().contains("volunteer"));
        let args: Vec<String> = container
            .args
            .iter()
            .flatten()
            .map(|arg| arg.replace("$(uuidgen)", "2f9c93d3-156c-47aa-8802-578ffca9b50e"))
            .collect();
        let config =
            volunteer::Config::try_parse_from(std::iter::once("volunteer".to_string()).chain(args))
                .unwrap_or_else(|error| panic!("{command}: {error}"));
        config
            .check()
            .unwrap_or_else(|error| panic!("{command}: {error}"));
    }
}

/// The pod meets the `restricted` pod-security level its namespace enforces.
fn assert_restricted(pod: &Pod, namespace: &Namespace, command: &str) {
    let labels: BTreeMap<String, String> = namespace.metadata.labels.clone().unwrap_or_default();
    if labels
        .get("pod-security.kubernetes.io/enforce")
        .map(String::as_str)
        != Some("restricted")
    {
        return;
    }
    let spec = pod.spec.as_ref().unwrap();
    let pod_security = spec.security_context.clone().unwrap_or_default();
    for container in &spec.containers {
        let security = container.security_context.clone().unwrap_or_default();
        let non_root = security.run_as_non_root.or(pod_security.run_as_non_root);
        assert_eq!(non_root, Some(true), "runAsNonRoot: {command}");
        let seccomp = security
            .seccomp_profile
            .or(pod_security.seccomp_profile.clone())
            .map(|profile| profile.type_);
        assert_eq!(
            seccomp.as_deref(),
            Some("RuntimeDefault"),
            "seccomp: {command}"
        );
        assert_eq!(
            security.allow_privilege_escalation,
            Some(false),
            "allowPrivilegeEscalation: {command}"
        );
        let dropped = security
            .capabilities
            .and_then(|c| c.drop)
            .unwrap_or_default();
        assert!(
            dropped.contains(&"ALL".to_string()),
            "capabilities: {command}"
        );
    }
}

#[test]
fn the_pod_model_follows_kubectl() {
    let run = parse(
        "kubectl run v -n ns --image=img --overrides='{\"spec\":{\"containers\":[{\"name\":\"v\",\"stdin\":true}]}}' -- --a=1",
    );
    // A plain merge patch replaces the container list (so image and args are lost)...
    let replaced = pod(&run);
    assert_eq!(replaced.spec.as_ref().unwrap().containers[0].image, None);
    // ...a strategic one merges the container of the same name.
    let merged = pod(&Run {
        override_type: Some("strategic".into()),
        ..run
    });
    let container = &merged.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("img"));
    assert_eq!(container.stdin, Some(true));
    assert_eq!(container.args.as_deref(), Some(&["--a=1".to_string()][..]));
    assert_eq!(merged.metadata.namespace.as_deref(), Some("ns"));
    // A list without a merge key (args) is replaced, and null deletes.
    let run = parse(
        "kubectl run v --image=img --override-type=strategic --overrides='{\"metadata\":{\"labels\":null},\"spec\":{\"containers\":[{\"name\":\"v\",\"args\":[\"--b\"]}]}}' -- --a=1 --c",
    );
    let patched = pod(&run);
    let container = &patched.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.args.as_deref(), Some(&["--b".to_string()][..]));
    assert_eq!(patched.metadata.labels, None);
}
