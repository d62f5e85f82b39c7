//! The manifests under `manifests/` stay true: every object reads into its typed k8s-openapi
//! form with no field left over (a misspelt field fails), the kustomizations, PodMonitors and
//! the PrometheusRule pass strict schemas and explicit checks, each RBAC rule set is what
//! `volunteer --print-rbac` prints for the flags its Deployment passes, the pods keep their
//! security settings, the collector's flags agree with its volumes, ports and probes, and every
//! metric an alert names is one the code exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Parser;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

/// One YAML document of a manifest file.
#[derive(Debug, Clone)]
struct Document {
    file: PathBuf,
    value: Value,
}

impl Document {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    fn dir(&self) -> &Path {
        self.file.parent().unwrap()
    }

    fn file_name(&self) -> &str {
        self.file.file_name().unwrap().to_str().unwrap()
    }

    /// The typed object, checked to lose nothing when written back: a field the type does not
    /// know (a typo) would be dropped, and the comparison fails naming it.
    fn typed<T: DeserializeOwned + Serialize>(&self) -> T {
        let object: T = serde_json::from_value(self.value.clone()).unwrap_or_else(|error| {
            panic!(
                "{} ({} {}): {error}",
                self.file.display(),
                self.kind(),
                self.name()
            )
        });
        let written = serde_json::to_value(&object).unwrap();
        let mut lost = Vec::new();
        lost_fields(&self.value, &written, String::new(), &mut lost);
        assert!(
            lost.is_empty(),
            "{} ({} {}): fields that {} does not know (misspelt?): {lost:?}",
            self.file.display(),
            self.kind(),
            self.name(),
            std::any::type_name::<T>()
        );
        object
    }

    /// The document read through a strict schema of ours (for kinds k8s-openapi has no type for).
    fn strict<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.value.clone())
            .unwrap_or_else(|error| panic!("{} ({}): {error}", self.file.display(), self.kind()))
    }
}

/// Paths present in `original` that `written` lacks or holds differently.
fn lost_fields(original: &Value, written: &Value, path: String, lost: &mut Vec<String>) {
    match (original, written) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) => lost_fields(value, other, format!("{path}.{key}"), lost),
                    None => lost.push(format!("{path}.{key}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                lost_fields(x, y, format!("{path}[{index}]"), lost);
            }
        }
        (a, b) if a != b => lost.push(format!("{path}: {a} became {b}")),
        _ => {}
    }
}

fn yaml_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
}

/// Every document of every manifest file.
fn documents() -> Vec<Document> {
    let mut files = Vec::new();
    yaml_files(&manifests_dir(), &mut files);
    files.sort();
    assert!(files.len() >= 15, "manifests are missing: {files:?}");
    let mut documents = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for yaml in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = Value::deserialize(yaml)
                .unwrap_or_else(|error| panic!("{}: not YAML: {error}", file.display()));
            if !value.is_null() {
                documents.push(Document {
                    file: file.clone(),
                    value,
                });
            }
        }
    }
    documents
}

/// The documents of one directory under `manifests/` (not its subdirectories).
fn in_dir(documents: &[Document], dir: &str) -> Vec<Document> {
    let dir = manifests_dir().join(dir);
    documents
        .iter()
        .filter(|document| document.dir() == dir)
        .cloned()
        .collect()
}

fn one<T: DeserializeOwned + Serialize>(documents: &[Document], kind: &str) -> T {
    let found: Vec<&Document> = documents.iter().filter(|d| d.kind() == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0].typed()
}

fn all<T: DeserializeOwned + Serialize>(documents: &[Document], kind: &str) -> Vec<T> {
    documents
        .iter()
        .filter(|d| d.kind() == kind)
        .map(Document::typed)
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    namespace: String,
    #[serde(default)]
    labels: Vec<KustomizeLabels>,
    resources: Vec<String>,
    #[serde(default)]
    images: Vec<KustomizeImage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KustomizeLabels {
    pairs: BTreeMap<String, String>,
    include_selectors: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KustomizeImage {
    name: String,
    new_name: String,
    new_tag: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodMonitor {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: PodMonitorSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Metadata {
    name: String,
    namespace: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodMonitorSpec {
    selector: LabelSelector,
    pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodMetricsEndpoint {
    port: String,
    path: String,
    interval: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusRule {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: RuleSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<AlertRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    pending_for: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// The pod template and the workload's kind, for every Deployment and StatefulSet.
fn workloads(documents: &[Document]) -> Vec<(Document, PodSpec)> {
    documents
        .iter()
        .filter_map(|document| {
            let template = match document.kind() {
                "Deployment" => document.typed::<Deployment>().spec.template,
                "StatefulSet" => document.typed::<StatefulSet>().spec.template,
                _ => return None,
            };
            Some((document.clone(), template.spec.expect("a pod spec")))
        })
        .collect()
}

fn only_container(pod: &PodSpec) -> &Container {
    assert_eq!(pod.containers.len(), 1);
    &pod.containers[0]
}

fn args(container: &Container) -> Vec<String> {
    container.args.clone().unwrap_or_default()
}

/// A memory quantity in MiB (`Mi` and `Gi` suffixes, as these manifests write them).
fn mebibytes(quantity: &str) -> f64 {
    if let Some(n) = quantity.strip_suffix("Mi") {
        n.parse().unwrap()
    } else if let Some(n) = quantity.strip_suffix("Gi") {
        n.parse::<f64>().unwrap() * 1024.0
    } else {
        panic!("unexpected memory quantity {quantity}")
    }
}

#[test]
fn every_manifest_reads_into_its_type_with_no_unknown_field() {
    let documents = documents();
    let mut kinds = BTreeSet::new();
    for document in &documents {
        match document.kind() {
            "Namespace" => drop(document.typed::<Namespace>()),
            "ServiceAccount" => drop(document.typed::<ServiceAccount>()),
            "ConfigMap" => drop(document.typed::<ConfigMap>()),
            "Secret" => drop(document.typed::<Secret>()),
            "Service" => drop(document.typed::<Service>()),
            "Deployment" => drop(document.typed::<Deployment>()),
            "StatefulSet" => drop(document.typed::<StatefulSet>()),
            "Ingress" => drop(document.typed::<Ingress>()),
            "ClusterRole" => drop(document.typed::<ClusterRole>()),
            "ClusterRoleBinding" => drop(document.typed::<ClusterRoleBinding>()),
            "Role" => drop(document.typed::<Role>()),
            "RoleBinding" => drop(document.typed::<RoleBinding>()),
            "Kustomization" => {
                let kustomization: Kustomization = document.strict();
                assert_eq!(kustomization.api_version, "kustomize.config.k8s.io/v1beta1");
                assert_eq!(kustomization.kind, "Kustomization");
                assert_eq!(document.file_name(), "kustomization.yaml");
            }
            "PodMonitor" => {
                let monitor: PodMonitor = document.strict();
                assert_eq!(monitor.api_version, "monitoring.coreos.com/v1");
                assert_eq!(monitor.kind, "PodMonitor");
                assert!(
                    !monitor.metadata.name.is_empty() && !monitor.metadata.namespace.is_empty()
                );
            }
            "PrometheusRule" => {
                let rule: PrometheusRule = document.strict();
                assert_eq!(rule.api_version, "monitoring.coreos.com/v1");
                assert_eq!(rule.kind, "PrometheusRule");
                assert!(!rule.metadata.name.is_empty() && !rule.metadata.namespace.is_empty());
            }
            other => panic!("{}: no check for kind {other:?}", document.file.display()),
        }
        kinds.insert(document.kind().to_string());
    }
    for expected in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "Ingress",
        "PodMonitor",
        "PrometheusRule",
        "Kustomization",
    ] {
        assert!(kinds.contains(expected), "no {expected} in manifests/");
    }
}

#[test]
fn kustomizations_list_their_files_and_set_namespace_and_images() {
    let documents = documents();
    for document in documents.iter().filter(|d| d.kind() == "Kustomization") {
        let kustomization: Kustomization = document.strict();
        let dir = document.dir();
        let here: Vec<&Document> = documents.iter().filter(|d| d.dir() == dir).collect();
        // Every resource exists; every manifest beside it is listed, except the examples that
        // need editing first.
        let mut unlisted: BTreeSet<String> = here
            .iter()
            .map(|d| d.file_name().to_string())
            .filter(|name| name != "kustomization.yaml" && !name.ends_with(".example.yaml"))
            .collect();
        for resource in &kustomization.resources {
            assert!(
                dir.join(resource).is_file(),
                "{}: resource {resource} does not exist",
                document.file.display()
            );
            unlisted.remove(resource);
        }
        assert!(
            unlisted.is_empty(),
            "{}: not listed: {unlisted:?}",
            document.file.display()
        );
        for labels in &kustomization.labels {
            assert!(
                !labels.include_selectors,
                "selectors are immutable; do not label them"
            );
            assert!(!labels.pairs.is_empty());
        }
        // Every object sits in the kustomization's namespace (the examples too), so that
        // applying it without the `namespace` transformer gives the same result.
        for object in &here {
            match object.kind() {
                "Kustomization" | "ClusterRole" | "ClusterRoleBinding" => {}
                "Namespace" => assert_eq!(object.name(), kustomization.namespace),
                _ => assert_eq!(
                    object.value["metadata"]["namespace"].as_str(),
                    Some(kustomization.namespace.as_str()),
                    "{}: {} {}",
                    object.file.display(),
                    object.kind(),
                    object.name()
                ),
            }
        }
        // Every image a workload names has an `images` entry to set the registry and tag.
        let here: Vec<Document> = here.into_iter().cloned().collect();
        for (workload, pod) in workloads(&here) {
            for container in &pod.containers {
                let image = container.image.as_deref().unwrap();
                let entry = kustomization
                    .images
                    .iter()
                    .find(|entry| entry.name == image)
                    .unwrap_or_else(|| {
                        panic!("{}: no images entry for {image}", workload.file.display())
                    });
                assert!(entry.new_name.ends_with(image) && !entry.new_tag.is_empty());
            }
        }
    }
}

/// The benchmark's peak RSS of the volunteer at 5,000 nodes, in MiB, from BENCHMARKS.md.
fn measured_volunteer_peak_mib() -> f64 {
    let benchmarks =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md"))
            .unwrap();
    let row = benchmarks
        .lines()
        .find(|line| line.contains("at 5,000 nodes") && line.starts_with("| ≤"))
        .expect("BENCHMARKS.md has the volunteer's 5,000-node memory target");
    let cell = row.split('|').nth(2).unwrap().trim();
    cell.strip_suffix(" MiB").unwrap().parse().unwrap()
}

#[test]
fn the_volunteer_rbac_is_what_print_rbac_prints_for_the_deployment_flags() {
    let documents = documents();
    for (dir, namespaced) in [("volunteer", false), ("volunteer-namespaced", true)] {
        let here = in_dir(&documents, dir);
        let kustomization: Kustomization = here
            .iter()
            .find(|d| d.kind() == "Kustomization")
            .unwrap()
            .strict();
        let deployment: Deployment = one(&here, "Deployment");
        let pod = deployment.spec.template.spec.unwrap();
        let container = only_container(&pod);
        // Kubernetes expands $(VAR) in args from the container's env; a UUID stands in for the
        // ConfigMap's value.
        let env_names: Vec<String> = container
            .env
            .iter()
            .flatten()
            .map(|v| v.name.clone())
            .collect();
        let flags: Vec<String> = args(container)
            .into_iter()
            .map(|arg| {
                if env_names.contains(&"CLUSTER_ID".to_string()) {
                    arg.replace("$(CLUSTER_ID)", "2f9c93d3-156c-47aa-8802-578ffca9b50e")
                } else {
                    arg
                }
            })
            .collect();
        let mut argv = vec!["volunteer".to_string(), "--print-rbac".to_string()];
        argv.extend(flags.iter().cloned());
        let config = volunteer::Config::try_parse_from(&argv)
            .unwrap_or_else(|error| panic!("{dir}: the Deployment's flags: {error}"));
        config.check().unwrap();
        let printed = volunteer::rbac::document(&config);

        let service_account: ServiceAccount = one(&here, "ServiceAccount");
        let account = service_account.metadata.name.clone().unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some(account.as_str()));
        let subject = Subject {
            kind: "ServiceAccount".into(),
            name: account.clone(),
            namespace: Some(kustomization.namespace.clone()),
            ..Subject::default()
        };

        if namespaced {
            assert!(flags.iter().any(|f| f.starts_with("--cluster-id=")));
            assert_eq!(
                config.namespaces,
                std::slice::from_ref(&kustomization.namespace),
                "{dir}: --namespace is the namespace it is installed in"
            );
            let expected: Vec<Role> = printed["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| serde_json::from_value(item.clone()).unwrap())
                .collect();
            let roles: Vec<Role> = all(&here, "Role");
            assert_eq!(roles, expected, "{dir}: the Role differs from --print-rbac");
            assert!(all::<ClusterRole>(&here, "ClusterRole").is_empty());
            let binding: RoleBinding = one(&here, "RoleBinding");
            assert_eq!(binding.role_ref.kind, "Role");
            assert_eq!(binding.role_ref.name, volunteer::rbac::ROLE_NAME);
            assert_eq!(binding.subjects.unwrap(), [subject]);
        } else {
            assert!(
                !flags.iter().any(|f| f.starts_with("--cluster-id")),
                "{dir}: the cluster id comes from kube-system"
            );
            let expected: ClusterRole = serde_json::from_value(printed).unwrap();
            let role: ClusterRole = one(&here, "ClusterRole");
            assert_eq!(
                role, expected,
                "{dir}: the ClusterRole differs from --print-rbac"
            );
            let binding: ClusterRoleBinding = one(&here, "ClusterRoleBinding");
            assert_eq!(binding.role_ref.kind, "ClusterRole");
            assert_eq!(binding.role_ref.name, volunteer::rbac::ROLE_NAME);
            assert_eq!(binding.subjects.unwrap(), [subject]);
        }
        // Nothing grants Secrets, or any verb but get and list.
        for document in here
            .iter()
            .filter(|d| matches!(d.kind(), "Role" | "ClusterRole"))
        {
            for rule in &document.value["rules"].as_array().unwrap().clone() {
                let text = rule.to_string();
                assert!(!text.contains("secrets") && !text.contains('*'), "{text}");
                for verb in rule["verbs"].as_array().unwrap() {
                    assert!(matches!(verb.as_str(), Some("get" | "list")), "{text}");
                }
            }
        }
        // Extensions come from a ConfigMap of this directory mounted where --extensions points.
        let extensions = config.extensions.clone().expect("--extensions");
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| Path::new(&m.mount_path) == extensions)
            .unwrap_or_else(|| panic!("{dir}: nothing is mounted at --extensions"));
        assert_eq!(mount.read_only, Some(true));
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        let config_map_name = volume.config_map.as_ref().unwrap().name.clone();
        let config_maps: Vec<ConfigMap> = all(&here, "ConfigMap");
        let config_map = config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(config_map_name.as_str()))
            .unwrap();
        for (file, text) in config_map.data.iter().flatten() {
            let path = tempfile::tempdir().unwrap();
            std::fs::write(path.path().join(file), text).unwrap();
            let loaded = volunteer::extensions::load(path.path());
            assert!(loaded.warnings.is_empty(), "{file}: {:?}", loaded.warnings);
        }
        assert!(config.collector.is_some());
    }
}

#[test]
fn pods_run_unprivileged_with_the_resources_the_benchmarks_justify() {
    let documents = documents();
    let workloads = workloads(&documents);
    assert_eq!(workloads.len(), 3, "two volunteers and a collector");
    for (workload, pod) in &workloads {
        let at = format!("{} ({})", workload.file.display(), workload.name());
        let security = pod.security_context.as_ref().expect(&at);
        assert_eq!(security.run_as_non_root, Some(true), "{at}");
        assert!(security.run_as_user.is_some_and(|uid| uid > 0), "{at}");
        assert_eq!(
            security.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault"),
            "{at}"
        );
        assert_ne!(pod.host_network, Some(true), "{at}");
        assert_ne!(pod.host_pid, Some(true), "{at}");
        assert!(
            pod.volumes.iter().flatten().all(|v| v.host_path.is_none()),
            "{at}"
        );
        for container in &pod.containers {
            let security = container.security_context.as_ref().expect(&at);
            assert_eq!(security.allow_privilege_escalation, Some(false), "{at}");
            assert_eq!(security.read_only_root_filesystem, Some(true), "{at}");
            assert_ne!(security.privileged, Some(true), "{at}");
            let capabilities = security.capabilities.as_ref().expect(&at);
            assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_string()][..]));
            assert!(capabilities.add.is_none(), "{at}");
            let resources = container.resources.as_ref().expect(&at);
            let requests = resources.requests.as_ref().expect(&at);
            assert!(
                requests.contains_key("cpu") && requests.contains_key("memory"),
                "{at}"
            );
            assert!(
                resources
                    .limits
                    .as_ref()
                    .is_some_and(|l| l.contains_key("memory")),
                "{at}: a memory limit"
            );
        }
        let talks_to_the_api = workload.kind() == "Deployment";
        assert_eq!(
            pod.automount_service_account_token,
            Some(talks_to_the_api),
            "{at}: a token only where the Kubernetes API is called"
        );
    }
    for account in all::<ServiceAccount>(&documents, "ServiceAccount") {
        assert_eq!(
            account.automount_service_account_token,
            Some(false),
            "{:?}: other pods using the account get no token",
            account.metadata.name
        );
    }

    let peak = measured_volunteer_peak_mib();
    for dir in ["volunteer", "volunteer-namespaced"] {
        let deployment: Deployment = one(&in_dir(&documents, dir), "Deployment");
        let spec = deployment.spec;
        assert_eq!(spec.replicas, Some(1), "{dir}: one report per period");
        let pod = spec.template.spec.unwrap();
        let resources = only_container(&pod).resources.clone().unwrap();
        let requests = resources.requests.unwrap();
        assert_eq!(requests["cpu"].0, "1m", "{dir}: Spartakus's request");
        assert_eq!(requests["memory"].0, "10Mi", "{dir}: Spartakus's request");
        let limit = mebibytes(&resources.limits.unwrap()["memory"].0);
        assert!(
            (2.0 * peak..=4.0 * peak).contains(&limit),
            "{dir}: memory limit {limit} MiB for a measured peak of {peak} MiB at 5,000 nodes"
        );
    }
}

#[tokio::test]
async fn the_collector_flags_agree_with_its_volumes_ports_probes_and_secrets() {
    let documents = documents();
    let here = in_dir(&documents, "collector");
    let statefulset: StatefulSet = one(&here, "StatefulSet");
    let spec = statefulset.spec;
    let pod = spec.template.spec.clone().unwrap();
    let container = only_container(&pod);
    let mut argv = vec!["collector".to_string()];
    argv.extend(args(container));
    let config = collector::Config::try_parse_from(&argv).expect("the StatefulSet's flags");
    config
        .check()
        .expect("the collector starts with these flags");

    let port = |name: &str| {
        container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no container port {name}"))
            .container_port
    };
    assert_eq!(i32::from(config.listen.port()), port("http"));
    assert_eq!(i32::from(config.admin_listen.port()), port("admin"));

    // The memory limit follows from the flags: the worst case of README "Memory" for a fleet of
    // a million clusters, and less than a quarter more.
    let connections = config
        .max_connections
        .expect("--max-connections: without it the worst case grows with the open-file limit");
    let worst = collector::budget::worst_case_memory(
        config.max_inflight_memory,
        connections.get(),
        1_000_000,
    ) as f64
        / (1 << 20) as f64;
    let resources = container.resources.clone().unwrap();
    let limit = mebibytes(&resources.limits.unwrap()["memory"].0);
    assert!(
        (worst..=1.25 * worst).contains(&limit),
        "memory limit {limit} MiB for a worst case of {worst:.0} MiB"
    );

    // The data directory is the volumeClaimTemplate's mount.
    let claims = spec.volume_claim_templates.unwrap();
    assert_eq!(claims.len(), 1);
    let claim = claims[0].metadata.name.clone().unwrap();
    let mount_of = |volume: &str| {
        container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == volume)
            .unwrap_or_else(|| panic!("{volume} is not mounted"))
            .clone()
    };
    assert_eq!(Path::new(&mount_of(&claim).mount_path), config.data_dir);
    let storage = mebibytes(
        &claims[0]
            .spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
    );
    let max_store = config.max_store_size.expect("--max-store-size") as f64 / (1 << 20) as f64;
    assert!(
        max_store < storage,
        "--max-store-size must stay below the volume"
    );

    // The sink file is a key of the mounted ConfigMap, and it parses.
    let volume = |name: &str| {
        pod.volumes
            .iter()
            .flatten()
            .find(|v| v.name == name)
            .unwrap()
            .clone()
    };
    let sinks_path = config.config.clone().expect("--config");
    let config_mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| sinks_path.starts_with(&m.mount_path))
        .expect("--config is on a mounted volume");
    let config_map_name = volume(&config_mount.name).config_map.unwrap().name;
    let config_maps: Vec<ConfigMap> = all(&here, "ConfigMap");
    let config_map = config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(config_map_name.as_str()))
        .unwrap();
    let key = sinks_path.file_name().unwrap().to_str().unwrap();
    let toml = &config_map.data.as_ref().unwrap()[key];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(key), toml).unwrap();
    collector::sinks::load(&dir.path().join(key), None)
        .await
        .expect("sinks.toml is a valid sink configuration");

    // Secrets: the admin token and every secret file sinks.toml names are keys of the example
    // Secret, which holds placeholders only, in the Secret the pod mounts.
    let secret_files: Vec<&Document> = here
        .iter()
        .filter(|d| d.file_name() == "secret.example.yaml")
        .collect();
    assert_eq!(secret_files.len(), 1);
    let example: Secret = secret_files[0].typed();
    let secret_mount = mount_of("secrets");
    assert_eq!(
        volume("secrets").secret.unwrap().secret_name,
        example.metadata.name
    );
    let keys = example.string_data.clone().unwrap();
    for value in keys.values() {
        assert!(value.starts_with("REPLACE-"), "{value}: not a placeholder");
    }
    let admin_token = config.admin_token_file.clone().expect("--admin-token-file");
    assert_eq!(
        admin_token.parent().unwrap(),
        Path::new(&secret_mount.mount_path)
    );
    assert!(keys.contains_key(admin_token.file_name().unwrap().to_str().unwrap()));
    let prefix = format!("{}/", secret_mount.mount_path);
    let named: Vec<&str> = toml
        .split('"')
        .filter_map(|s| s.strip_prefix(prefix.as_str()))
        .collect();
    assert!(named.len() >= 3, "sinks.toml shows its secret files");
    for key in named {
        assert!(
            keys.contains_key(key),
            "sinks.toml names {key}, which secret.example.yaml lacks"
        );
    }

    // Probes on the public port; the Service exposes that port and nothing else.
    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        let get = probe.as_ref().unwrap().http_get.clone().unwrap();
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("http".into())
        );
        get.path.unwrap()
    };
    assert_eq!(probe_path(&container.liveness_probe), "/healthz");
    assert_eq!(probe_path(&container.readiness_probe), "/readyz");
    assert_eq!(probe_path(&container.startup_probe), "/healthz");
    let service: Service = one(&here, "Service");
    let service_spec = service.spec.unwrap();
    let ports = service_spec.ports.unwrap();
    assert_eq!(ports.len(), 1, "the public port only");
    assert_eq!(
        ports[0].target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("http".into()))
    );
    let selector = service_spec.selector.unwrap();
    let pod_metadata = spec.template.metadata.unwrap();
    let pod_labels = pod_metadata.labels.unwrap();
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    assert_eq!(
        spec.service_name.as_deref(),
        service.metadata.name.as_deref()
    );

    // Prometheus reaches the admin port on the pods: annotations and the PodMonitor.
    let annotations = pod_metadata.annotations.unwrap();
    assert_eq!(annotations["prometheus.io/port"], port("admin").to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    let monitoring = in_dir(&documents, "collector/monitoring");
    let monitor: PodMonitor = monitoring
        .iter()
        .find(|d| d.kind() == "PodMonitor")
        .unwrap()
        .strict();
    assert_eq!(monitor.spec.pod_metrics_endpoints[0].port, "admin");
    assert_eq!(monitor.spec.pod_metrics_endpoints[0].path, "/metrics");
    assert!(!monitor.spec.pod_metrics_endpoints[0].interval.is_empty());
    assert_eq!(
        monitor.spec.selector.match_labels.unwrap(),
        selector,
        "the PodMonitor selects the collector's pods"
    );

    // The Ingress example routes to the Service's public port over TLS.
    let ingress: Ingress = here
        .iter()
        .find(|d| d.file_name() == "ingress.example.yaml")
        .unwrap()
        .typed();
    let ingress = ingress.spec.unwrap();
    let tls_hosts: Vec<String> = ingress
        .tls
        .unwrap()
        .into_iter()
        .flat_map(|t| t.hosts.unwrap())
        .collect();
    for rule in ingress.rules.unwrap() {
        assert!(
            tls_hosts.contains(&rule.host.unwrap()),
            "every host has TLS"
        );
        for path in rule.http.unwrap().paths {
            let backend = path.backend.service.unwrap();
            assert_eq!(Some(backend.name), service.metadata.name);
            assert_eq!(backend.port.unwrap().name.as_deref(), Some("http"));
        }
    }
}

/// `(metric, label, value)` of every equality or regex matcher in `expr`, and the bare metric
/// names (identifiers starting with `prefixes`).
fn metrics_in(expr: &str, prefixes: &[&str]) -> (BTreeSet<String>, Vec<(String, String, String)>) {
    let mut names = BTreeSet::new();
    let mut matchers = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c == '"' {
            // Skip string literals outside selectors.
            i += 1 + expr[i + 1..].find('"').unwrap() + 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < bytes.len()
                && ((bytes[i] as char).is_ascii_alphanumeric() || bytes[i] == b'_')
            {
                i += 1;
            }
            let name = &expr[start..i];
            if !prefixes.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            names.insert(name.to_string());
            if expr[i..].starts_with('{') {
                let end = i + expr[i..].find('}').unwrap();
                for matcher in expr[i + 1..end].split(',') {
                    let matcher = matcher.trim();
                    let (label, values) = if let Some((l, v)) = matcher.split_once("=~") {
                        (l, v)
                    } else if let Some((l, v)) = matcher.split_once('=') {
                        if l.ends_with('!') {
                            continue;
                        }
                        (l, v)
                    } else {
                        continue;
                    };
                    for value in values.trim().trim_matches('"').split('|') {
                        matchers.push((name.to_string(), label.trim().to_string(), value.into()));
                    }
                }
                i = end + 1;
            }
            continue;
        }
        i += 1;
    }
    (names, matchers)
}

#[test]
fn alerts_name_only_metrics_and_label_values_the_code_exports() {
    let documents = documents();
    let rules: Vec<PrometheusRule> = documents
        .iter()
        .filter(|d| d.kind() == "PrometheusRule")
        .map(Document::strict)
        .collect();
    assert_eq!(rules.len(), 1);

    let collector_metrics = collector::metrics::Metrics::new();
    collector_metrics.init_sink(&collector::metrics::SinkLabels {
        sink: "segment".into(),
        r#type: "segment",
    });
    let exposition = format!(
        "{}{}",
        collector_metrics.encode(),
        volunteer::metrics::Metrics::new().encode()
    );
    let exported = e2e::metric_families(&exposition);

    let mut used = BTreeSet::new();
    for group in &rules[0].spec.groups {
        assert!(!group.name.is_empty());
        for rule in &group.rules {
            let at = &rule.alert;
            assert!(
                matches!(
                    rule.labels.get("severity").map(String::as_str),
                    Some("warning" | "critical")
                ),
                "{at}: severity"
            );
            assert!(rule.annotations.contains_key("summary"), "{at}: summary");
            if let Some(pending) = &rule.pending_for {
                humantime::parse_duration(pending).unwrap_or_else(|e| panic!("{at}: for: {e}"));
            }
            let (names, matchers) = metrics_in(&rule.expr, &["collector_", "volunteer_"]);
            assert!(!names.is_empty(), "{at}: names no metric");
            for name in &names {
                assert!(
                    exported.contains(name),
                    "{at}: {name} is not a metric the code exports"
                );
            }
            for (metric, label, value) in matchers {
                let series = format!("{label}=\"{value}\"");
                assert!(
                    exposition
                        .lines()
                        .any(|line| line.starts_with(&metric) && line.contains(&series)),
                    "{at}: {metric} has no series with {series}"
                );
            }
            used.extend(names);
        }
    }
    // The alerts the operators' guide promises.
    for metric in [
        "volunteer_consecutive_failures",
        "collector_reports_total",
        "collector_outbox_depth",
        "collector_outbox_oldest_seconds",
        "collector_deliveries_total",
        "collector_store_available",
    ] {
        assert!(used.contains(metric), "no alert on {metric}");
    }
}
