//! The RBAC rules that exactly cover the calls the volunteer makes with given flags
//! (`--print-rbac`), derived from the same list of sources the snapshot reads.

use common::report::ObjectKind;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::config::Config;
use crate::sections::{KINDS, needs_kube_system};

/// Name of the ClusterRole or Roles.
pub const ROLE_NAME: &str = "volunteer";

/// The ClusterRole for cluster-wide reading.
pub fn cluster_role(config: &Config) -> ClusterRole {
    let mut rules = vec![list_rule("", &["nodes"]), list_rule("", &["namespaces"])];
    if needs_kube_system(config) {
        rules.push(PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["namespaces".into()]),
            resource_names: Some(vec!["kube-system".into()]),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        });
    }
    rules.extend(object_rules(config));
    rules.push(PolicyRule {
        non_resource_urls: Some(vec!["/version".into()]),
        verbs: vec!["get".into()],
        ..PolicyRule::default()
    });
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(ROLE_NAME.into()),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
        ..ClusterRole::default()
    }
}

/// One Role per `--namespace`, for counting objects there. (Nodes, namespaces, the server
/// version and `kube-system` are cluster-scoped: no Role can grant them, so those sections are
/// reported as skipped unless a ClusterRole grants them too.)
pub fn roles(config: &Config) -> Vec<Role> {
    config
        .namespaces
        .iter()
        .map(|namespace| Role {
            metadata: ObjectMeta {
                name: Some(ROLE_NAME.into()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            rules: Some(object_rules(config)),
        })
        .collect()
}

/// `list` on every object kind counted with these flags, grouped by API group.
fn object_rules(config: &Config) -> Vec<PolicyRule> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for kind in KINDS
        .iter()
        .filter(|kind| config.count_secrets || kind.kind != ObjectKind::Secrets)
    {
        match groups.iter_mut().find(|(group, _)| *group == kind.group) {
            Some((_, resources)) => resources.push(kind.plural()),
            None => groups.push((kind.group, vec![kind.plural()])),
        }
    }
    groups
        .into_iter()
        .map(|(group, resources)| list_rule(group, &resources))
        .collect()
}

fn list_rule(group: &str, resources: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: vec!["list".into()],
        ..PolicyRule::default()
    }
}

/// What `--print-rbac` prints: the ClusterRole, or a `List` of Roles with `--namespace`, as JSON
/// that `kubectl apply -f -` takes.
pub fn document(config: &Config) -> Value {
    fn typed<T: serde::Serialize>(api_version: &str, kind: &str, object: &T) -> Value {
        let mut value = serde_json::to_value(object).expect("RBAC objects serialize");
        let map = value.as_object_mut().expect("an object");
        map.insert("apiVersion".into(), api_version.into());
        map.insert("kind".into(), kind.into());
        value
    }
    if config.namespaces.is_empty() {
        typed(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            &cluster_role(config),
        )
    } else {
        let items: Vec<Value> = roles(config)
            .iter()
            .map(|role| typed("rbac.authorization.k8s.io/v1", "Role", role))
            .collect();
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["volunteer", "--print-rbac"];
        argv.extend_from_slice(args);
        Config::parse_from(argv)
    }

    fn resources(rules: &[PolicyRule], verb: &str) -> Vec<String> {
        rules
            .iter()
            .filter(|rule| rule.verbs == [verb])
            .flat_map(|rule| rule.resources.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn the_default_cluster_role_lists_what_is_read_and_no_secrets() {
        let role = cluster_role(&config(&[]));
        let rules = role.rules.unwrap();
        let listed = resources(&rules, "list");
        for resource in [
            "nodes",
            "namespaces",
            "pods",
            "services",
            "persistentvolumeclaims",
            "configmaps",
            "deployments",
            "statefulsets",
            "daemonsets",
            "jobs",
            "cronjobs",
            "ingresses",
        ] {
            assert!(listed.contains(&resource.to_string()), "{resource}");
        }
        assert!(!listed.contains(&"secrets".to_string()));
        let kube_system = rules
            .iter()
            .find(|rule| rule.verbs == ["get"] && rule.resources.is_some())
            .unwrap();
        assert_eq!(
            kube_system.resource_names.as_deref(),
            Some(&["kube-system".to_string()][..])
        );
        assert!(
            rules
                .iter()
                .all(|rule| rule.verbs == ["list"] || rule.verbs == ["get"])
        );
    }

    #[test]
    fn secrets_only_when_counted_and_kube_system_only_when_needed() {
        let with_secrets = cluster_role(&config(&["--count-secrets"])).rules.unwrap();
        assert!(resources(&with_secrets, "list").contains(&"secrets".to_string()));

        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "secret").unwrap();
        let fixed = config(&[
            "--cluster-id",
            "2f9c93d3-156c-47aa-8802-578ffca9b50e",
            "--node-id-key-file",
            key.to_str().unwrap(),
        ]);
        let rules = cluster_role(&fixed).rules.unwrap();
        assert!(rules.iter().all(|rule| rule.resource_names.is_none()));
    }

    #[test]
    fn namespaced_roles_cover_only_namespaced_kinds() {
        let document = document(&config(&["--namespace", "team-a", "--namespace", "team-b"]));
        assert_eq!(document["kind"], "List");
        let items = document["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["metadata"]["namespace"], "team-b");
        let text = document.to_string();
        assert!(
            !text.contains("nodes") && !text.contains("\"namespaces\""),
            "{text}"
        );
        let role: Role = serde_json::from_value(items[0].clone()).unwrap();
        assert!(resources(&role.rules.unwrap(), "list").contains(&"pods".to_string()));
    }
}
