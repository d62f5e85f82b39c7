//! Reading the cluster: server version, nodes, namespaces and object counts, through paged
//! lists (metadata only for objects), reduced to the report's vocabulary as they stream in.

use common::anonymize::{NodeIdHash, NodeIdKey};
use common::report::{self, ObjectKind, Objects, Section, SkipReason, Skipped};
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::Client;
use kube::api::{Api, DynamicObject};

use crate::config::Config;
use crate::paging::{ApiCalls, Page, each_page};
use crate::reduce::report_node;
use crate::sections::{KINDS, KindSource, skip_reason};
use crate::tally::KindTally;

/// What a snapshot reads, from the flags.
#[derive(Debug, Clone)]
pub struct ReadSettings {
    /// Objects per page.
    pub page_size: u32,
    /// Namespaces to count objects in; empty for all.
    pub namespaces: Vec<String>,
    /// Whether Secrets are counted.
    pub count_secrets: bool,
    /// Node-id algorithm.
    pub node_id_hash: NodeIdHash,
}

impl From<&Config> for ReadSettings {
    fn from(config: &Config) -> Self {
        ReadSettings {
            page_size: config.page_size,
            namespaces: config.namespaces.clone(),
            count_secrets: config.count_secrets,
            node_id_hash: config.node_id_hash.into(),
        }
    }
}

/// What one snapshot found.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// API server version.
    pub master_version: Option<String>,
    /// Nodes, already reduced and hashed.
    pub nodes: Vec<report::Node>,
    /// Namespace count.
    pub namespaces: Option<i64>,
    /// Object statistics.
    pub objects: Objects,
    /// Sections that could not be read, and why.
    pub skipped: Vec<Skipped>,
}

fn skip(section: Section, error: &kube::Error) -> Skipped {
    let reason = skip_reason(error);
    let name = section.to_string();
    tracing::warn!(section = name.as_str(), reason = reason.as_str(), %error, "section skipped");
    Skipped::new(section, reason)
}

/// Reads the whole cluster once. A section that cannot be read is named in `skipped`; the rest
/// still comes back.
pub async fn take(
    client: &Client,
    settings: &ReadSettings,
    key: &NodeIdKey,
    now: i64,
    calls: &ApiCalls,
) -> Snapshot {
    let mut snapshot = Snapshot::default();

    calls.count();
    match client.apiserver_version().await {
        Ok(info) => snapshot.master_version = Some(info.git_version),
        Err(error) => snapshot.skipped.push(skip(Section::MasterVersion, &error)),
    }

    match read_nodes(client, settings, key, calls).await {
        Ok(nodes) => snapshot.nodes = nodes,
        Err(error) => snapshot.skipped.push(skip(Section::Nodes, &error)),
    }

    let namespaces_in_scope = if settings.namespaces.is_empty() {
        match count_namespaces(client, settings.page_size, calls).await {
            Ok(count) => {
                snapshot.namespaces = Some(count as i64);
                Some(count)
            }
            Err(error) => {
                snapshot.skipped.push(skip(Section::Namespaces, &error));
                None
            }
        }
    } else {
        // Counting is restricted to the given namespaces; the cluster's total is not read.
        snapshot
            .skipped
            .push(Skipped::new(Section::Namespaces, SkipReason::Disabled));
        Some(settings.namespaces.len() as u64)
    };

    for source in &KINDS {
        let section = Section::Objects(source.kind);
        if source.kind == ObjectKind::Secrets && !settings.count_secrets {
            snapshot
                .skipped
                .push(Skipped::new(section, SkipReason::Disabled));
            continue;
        }
        match tally_kind(client, settings, source, now, calls).await {
            Ok(tally) => snapshot
                .objects
                .set(source.kind, Some(tally.finish(namespaces_in_scope))),
            Err(error) => snapshot.skipped.push(skip(section, &error)),
        }
    }
    snapshot
}

async fn read_nodes(
    client: &Client,
    settings: &ReadSettings,
    key: &NodeIdKey,
    calls: &ApiCalls,
) -> kube::Result<Vec<report::Node>> {
    let api: Api<Node> = Api::all(client.clone());
    // Node objects are large (their status lists every image): smaller pages.
    let page_size = settings.page_size.clamp(1, 100);
    let mut nodes = Vec::new();
    each_page(
        page_size,
        calls,
        |params| {
            let api = api.clone();
            async move { api.list(&params).await }
        },
        |page| match page {
            Page::Items(items) => nodes.extend(
                items
                    .iter()
                    .map(|node| report_node(node, settings.node_id_hash, key)),
            ),
            Page::Restart => nodes.clear(),
        },
    )
    .await?;
    Ok(nodes)
}

async fn count_namespaces(client: &Client, page_size: u32, calls: &ApiCalls) -> kube::Result<u64> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut count = 0u64;
    each_page(
        page_size,
        calls,
        |params| {
            let api = api.clone();
            async move { api.list_metadata(&params).await }
        },
        |page| match page {
            Page::Items(items) => count += items.len() as u64,
            Page::Restart => count = 0,
        },
    )
    .await?;
    Ok(count)
}

async fn tally_kind(
    client: &Client,
    settings: &ReadSettings,
    source: &KindSource,
    now: i64,
    calls: &ApiCalls,
) -> kube::Result<KindTally> {
    let resource = source.api_resource();
    let apis: Vec<Api<DynamicObject>> = if settings.namespaces.is_empty() {
        vec![Api::all_with(client.clone(), &resource)]
    } else {
        settings
            .namespaces
            .iter()
            .map(|namespace| Api::namespaced_with(client.clone(), namespace, &resource))
            .collect()
    };
    let mut total = KindTally::default();
    for api in apis {
        let mut tally = KindTally::default();
        each_page(
            settings.page_size,
            calls,
            |params| {
                let api = api.clone();
                async move { api.list_metadata(&params).await }
            },
            |page| match page {
                Page::Items(items) => {
                    for item in items {
                        let namespace = item.metadata.namespace.as_deref().unwrap_or_default();
                        let created = item
                            .metadata
                            .creation_timestamp
                            .as_ref()
                            .map(|time| time.0.as_second());
                        tally.add(namespace, created, now);
                    }
                }
                Page::Restart => tally = KindTally::default(),
            },
        )
        .await?;
        total.merge(tally);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_api::{self, Exchange, metadata_list, node_list, object_meta};
    use crate::paging::MAX_LIST_RESTARTS;
    use serde_json::json;

    const NOW: i64 = 1_763_737_200; // 2025-11-21T15:00:00Z

    fn settings(page_size: u32) -> ReadSettings {
        ReadSettings {
            page_size,
            namespaces: vec![],
            count_secrets: false,
            node_id_hash: NodeIdHash::Hmac,
        }
    }

    fn key() -> NodeIdKey {
        NodeIdKey::derive(b"test")
    }

    #[tokio::test]
    async fn nodes_are_listed_page_by_page() {
        let (client, verifier) = mock_api::client();
        let server = verifier.run(vec![
            Exchange::ok(
                "/api/v1/nodes?&limit=2",
                node_list(&["n1", "n2"], Some("t1")),
            ),
            Exchange::ok(
                "/api/v1/nodes?&limit=2&continue=t1",
                node_list(&["n3"], None),
            ),
        ]);
        let calls = ApiCalls::default();
        let nodes = read_nodes(&client, &settings(2), &key(), &calls)
            .await
            .unwrap();
        server.await.unwrap();
        assert_eq!(nodes.len(), 3);
        assert_eq!(calls.get(), 2);
        let node = &nodes[0];
        assert_eq!(node.os_image.as_deref(), Some("ubuntu 22.04"));
        assert_eq!(node.kernel_version.as_deref(), Some("5.15.0-azure"));
        assert_eq!(node.cloud_provider.as_deref(), Some("aws"));
        assert_eq!(node.id.len(), 32);
        assert_ne!(nodes[0].id, nodes[1].id);
        let wire = serde_json::to_string(&nodes).unwrap();
        for leaked in ["n1", "machine-", "uuid-", "i-n", "eu-west-1a"] {
            assert!(!wire.contains(leaked), "{leaked} leaked: {wire}");
        }
    }

    #[tokio::test]
    async fn an_expired_continue_token_restarts_the_list() {
        let (client, verifier) = mock_api::client();
        let page = |names: &[&str], token| {
            let items: Vec<_> = names
                .iter()
                .map(|n| object_meta("team-a", n, "2025-11-20T15:00:00Z"))
                .collect();
            metadata_list(&items, token)
        };
        let server = verifier.run(vec![
            Exchange::ok("/api/v1/pods?&limit=2", page(&["a", "b"], Some("old"))),
            Exchange::status("/api/v1/pods?&limit=2&continue=old", 410, "Expired"),
            Exchange::ok("/api/v1/pods?&limit=2", page(&["a", "b"], Some("new"))),
            Exchange::ok("/api/v1/pods?&limit=2&continue=new", page(&["c"], None)),
        ]);
        let calls = ApiCalls::default();
        let tally = tally_kind(&client, &settings(2), &KINDS[0], NOW, &calls)
            .await
            .unwrap();
        server.await.unwrap();
        let stats = tally.finish(Some(1));
        assert_eq!(
            stats.total, 3,
            "the first, expired pass is not counted twice"
        );
        assert_eq!(stats.per_namespace[3], 1, "team-a holds 3 pods");
        assert_eq!(stats.age_seconds.unwrap().max, 86_400);
        assert_eq!(calls.get(), 4);
    }

    #[tokio::test]
    async fn a_list_that_keeps_expiring_is_skipped_as_expired() {
        let (client, verifier) = mock_api::client();
        let first = metadata_list(&[object_meta("a", "x", "2025-11-20T15:00:00Z")], Some("t"));
        let mut scenario = Vec::new();
        for _ in 0..=MAX_LIST_RESTARTS {
            scenario.push(Exchange::ok("/api/v1/services?&limit=5", first.clone()));
            scenario.push(Exchange::status(
                "/api/v1/services?&limit=5&continue=t",
                410,
                "Expired",
            ));
        }
        let server = verifier.run(scenario);
        let error = tally_kind(&client, &settings(5), &KINDS[1], NOW, &ApiCalls::default())
            .await
            .unwrap_err();
        server.await.unwrap();
        assert_eq!(skip_reason(&error), SkipReason::Expired);
    }

    #[tokio::test]
    async fn forbidden_and_missing_sections_are_skipped_and_the_rest_goes_out() {
        let (client, verifier) = mock_api::client();
        let empty = metadata_list(&[], None);
        let pods = metadata_list(
            &[
                object_meta("team-a", "p1", "2025-11-21T14:00:00Z"),
                object_meta("team-b", "p2", "2025-11-21T13:00:00Z"),
            ],
            None,
        );
        let namespaces = metadata_list(
            &[
                json!({"name": "team-a"}),
                json!({"name": "team-b"}),
                json!({"name": "empty"}),
            ],
            None,
        );
        let server = verifier.run(vec![
            Exchange::ok(
                "/version",
                json!({"major": "1", "minor": "31", "gitVersion": "v1.31.2",
                "gitCommit": "x", "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}),
            ),
            Exchange::status("/api/v1/nodes?&limit=10", 403, "Forbidden"),
            Exchange::ok("/api/v1/namespaces?&limit=10", namespaces),
            Exchange::ok("/api/v1/pods?&limit=10", pods),
            Exchange::ok("/api/v1/services?&limit=10", empty.clone()),
            Exchange::status("/apis/apps/v1/deployments?&limit=10", 403, "Forbidden"),
            Exchange::ok("/apis/apps/v1/statefulsets?&limit=10", empty.clone()),
            Exchange::ok("/apis/apps/v1/daemonsets?&limit=10", empty.clone()),
            Exchange::ok("/apis/batch/v1/jobs?&limit=10", empty.clone()),
            Exchange::ok("/apis/batch/v1/cronjobs?&limit=10", empty.clone()),
            Exchange::ok("/api/v1/persistentvolumeclaims?&limit=10", empty.clone()),
            Exchange::ok("/api/v1/configmaps?&limit=10", empty.clone()),
            Exchange::status(
                "/apis/networking.k8s.io/v1/ingresses?&limit=10",
                404,
                "NotFound",
            ),
        ]);
        let snapshot = take(&client, &settings(10), &key(), NOW, &ApiCalls::default()).await;
        server.await.unwrap();
        assert_eq!(snapshot.master_version.as_deref(), Some("v1.31.2"));
        assert_eq!(snapshot.namespaces, Some(3));
        let skipped: Vec<(&str, &str)> = snapshot
            .skipped
            .iter()
            .map(|s| (s.section.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("nodes", "forbidden"),
                ("objects.deployments", "forbidden"),
                ("objects.secrets", "disabled"),
                ("objects.ingresses", "notFound"),
            ]
        );
        let pods = snapshot.objects.pods.unwrap();
        assert_eq!(pods.total, 2);
        assert_eq!(pods.per_namespace[0], 1, "the empty namespace");
        assert_eq!(pods.per_namespace[1], 2);
        assert_eq!(pods.age_seconds.unwrap().max, 7200);
        assert_eq!(snapshot.objects.services.unwrap().per_namespace[0], 3);
        assert!(snapshot.objects.deployments.is_none());
    }

    #[tokio::test]
    async fn namespaced_mode_counts_only_the_given_namespaces() {
        let (client, verifier) = mock_api::client();
        let one = metadata_list(&[object_meta("team-a", "cm", "2025-11-21T14:00:00Z")], None);
        let none = metadata_list(&[], None);
        let server = verifier.run(vec![
            Exchange::ok("/api/v1/namespaces/team-a/configmaps?&limit=50", one),
            Exchange::ok("/api/v1/namespaces/team-b/configmaps?&limit=50", none),
        ]);
        let mut settings = settings(50);
        settings.namespaces = vec!["team-a".into(), "team-b".into()];
        let configmaps = KINDS
            .iter()
            .find(|k| k.kind == ObjectKind::ConfigMaps)
            .unwrap();
        let tally = tally_kind(&client, &settings, configmaps, NOW, &ApiCalls::default())
            .await
            .unwrap();
        server.await.unwrap();
        let stats = tally.finish(Some(2));
        assert_eq!(stats.total, 1);
        assert_eq!(stats.per_namespace[0], 1);
        assert_eq!(stats.per_namespace[1], 1);
    }
}
