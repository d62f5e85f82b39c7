//! The cluster's identity: its id and the node-id key, from the flags or derived from the
//! `kube-system` namespace's UID (which itself never leaves the cluster).

use common::anonymize::NodeIdKey;
use common::report::{Section, SkipReason, Skipped};
use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client};
use uuid::Uuid;

use crate::config::Config;
use crate::paging::ApiCalls;
use crate::sections::{needs_kube_system, skip_reason};
use crate::{Error, Result};

/// The project's UUID namespace for cluster ids derived from the `kube-system` UID. Never change
/// it: every derived cluster id depends on it.
pub const CLUSTER_ID_NAMESPACE: Uuid = Uuid::from_u128(0xb9c84035_9706_440f_b9f2_bbe46df3a13a);

/// The cluster id derived from the `kube-system` namespace UID (UUID v5), the canonical cluster
/// identity proposed in kubernetes/community#662: stable across restarts and upgrades.
pub fn cluster_id_from_uid(kube_system_uid: &str) -> Uuid {
    Uuid::new_v5(&CLUSTER_ID_NAMESPACE, kube_system_uid.as_bytes())
}

/// Who the cluster is for this report.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The report's cluster id.
    pub cluster_id: Uuid,
    /// The node-id key.
    pub node_key: NodeIdKey,
    /// Set when the node-id key is the random per-process one, with why.
    pub key_skipped: Option<Skipped>,
}

/// Resolves the identity, reading `kube-system` only when the flags leave something to derive.
///
/// `fallback_key` is the random per-process key used when no other key is available (node ids
/// then change across restarts, which the report says in its skipped sections).
pub async fn resolve(
    client: &Client,
    config: &Config,
    fallback_key: &NodeIdKey,
    calls: &ApiCalls,
) -> Result<Identity> {
    let kube_system = if needs_kube_system(config) {
        calls.count();
        Some(kube_system_uid(client).await)
    } else {
        None
    };
    let uid = match &kube_system {
        Some(Ok(uid)) => Some(uid.as_str()),
        _ => None,
    };

    let cluster_id = match (config.fixed_cluster_id(), uid) {
        (Some(id), _) => id,
        (None, Some(uid)) => cluster_id_from_uid(uid),
        (None, None) => {
            let why = match &kube_system {
                Some(Err(error)) => error.to_string(),
                _ => "no kube-system namespace UID".into(),
            };
            return Err(Error::ClusterId(why));
        }
    };

    let from_file = match &config.node_id_key_file {
        Some(path) => tokio::fs::read(path)
            .await
            .map_err(|error| {
                tracing::warn!(file = %path.display(), %error, "cannot read the node-id key file");
            })
            .ok()
            .filter(|secret| !secret.is_empty()),
        None => None,
    };
    let (node_key, key_skipped) = match (from_file, uid) {
        (Some(secret), _) => (NodeIdKey::derive(&secret), None),
        (None, Some(uid)) => (NodeIdKey::derive(uid.as_bytes()), None),
        (None, None) => {
            let reason = match &kube_system {
                Some(Err(error)) => skip_reason(error),
                _ => SkipReason::Unavailable,
            };
            tracing::warn!(
                reason = reason.as_str(),
                "no node-id key (neither --node-id-key-file nor the kube-system namespace UID): \
                 using a random key, so node ids change when the volunteer restarts"
            );
            (
                fallback_key.clone(),
                Some(Skipped::new(Section::NodeIdKey, reason)),
            )
        }
    };
    Ok(Identity {
        cluster_id,
        node_key,
        key_skipped,
    })
}

async fn kube_system_uid(client: &Client) -> kube::Result<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace = api.get_metadata("kube-system").await?;
    namespace.metadata.uid.ok_or_else(|| {
        kube::Error::Api(
            kube::core::Status::failure("the kube-system namespace has no UID", "NoUID")
                .with_code(404)
                .boxed(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frozen (computed independently with Python's `uuid.uuid5`): a cluster keeps its id across
    /// volunteer versions only if this never changes.
    #[test]
    fn derived_cluster_ids_are_stable() {
        assert_eq!(
            cluster_id_from_uid("5f8a2d8e-3b1c-4c7e-9a0e-1d2c3b4a5f60").to_string(),
            "ad634be1-2464-5654-8fcc-639a48bcf490"
        );
        assert_ne!(
            cluster_id_from_uid("5f8a2d8e-3b1c-4c7e-9a0e-1d2c3b4a5f60").to_string(),
            "5f8a2d8e-3b1c-4c7e-9a0e-1d2c3b4a5f60"
        );
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;
    use crate::mock_api::{self, Exchange};
    use clap::Parser;
    use serde_json::json;

    const UID: &str = "5f8a2d8e-3b1c-4c7e-9a0e-1d2c3b4a5f60";

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["volunteer", "--dry-run"];
        argv.extend_from_slice(args);
        Config::parse_from(argv)
    }

    fn kube_system() -> serde_json::Value {
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
               "metadata": {"name": "kube-system", "uid": UID}})
    }

    #[tokio::test]
    async fn the_kube_system_uid_gives_the_cluster_id_and_the_node_key() {
        let (client, verifier) = mock_api::client();
        let server = verifier.run(vec![Exchange::ok(
            "/api/v1/namespaces/kube-system",
            kube_system(),
        )]);
        let fallback = NodeIdKey::derive(b"random");
        let identity = resolve(&client, &config(&[]), &fallback, &ApiCalls::default())
            .await
            .unwrap();
        server.await.unwrap();
        assert_eq!(identity.cluster_id, cluster_id_from_uid(UID));
        assert_eq!(identity.node_key, NodeIdKey::derive(UID.as_bytes()));
        assert!(identity.key_skipped.is_none());
    }

    #[tokio::test]
    async fn without_kube_system_a_given_id_works_and_the_key_is_random() {
        let (client, verifier) = mock_api::client();
        let server = verifier.run(vec![
            Exchange::status("/api/v1/namespaces/kube-system", 403, "Forbidden"),
            Exchange::status("/api/v1/namespaces/kube-system", 403, "Forbidden"),
        ]);
        let fallback = NodeIdKey::derive(b"random");
        let err = resolve(&client, &config(&[]), &fallback, &ApiCalls::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--cluster-id"), "{err}");

        let given = config(&["--cluster-id", "2f9c93d3-156c-47aa-8802-578ffca9b50e"]);
        let identity = resolve(&client, &given, &fallback, &ApiCalls::default())
            .await
            .unwrap();
        server.await.unwrap();
        assert_eq!(
            identity.cluster_id.to_string(),
            "2f9c93d3-156c-47aa-8802-578ffca9b50e"
        );
        assert_eq!(identity.node_key, fallback);
        let skipped = identity.key_skipped.unwrap();
        assert_eq!(
            (skipped.section.as_str(), skipped.reason.as_str()),
            ("nodeIdKey", "forbidden")
        );
    }

    #[tokio::test]
    async fn with_both_flags_kube_system_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key");
        std::fs::write(&key_file, "operator-secret").unwrap();
        let (client, verifier) = mock_api::client();
        let server = verifier.run(vec![]);
        let given = config(&[
            "--cluster-id",
            "2f9c93d3-156c-47aa-8802-578ffca9b50e",
            "--node-id-key-file",
            key_file.to_str().unwrap(),
        ]);
        let calls = ApiCalls::default();
        let identity = resolve(&client, &given, &NodeIdKey::derive(b"r"), &calls)
            .await
            .unwrap();
        server.await.unwrap();
        assert_eq!(calls.get(), 0);
        assert_eq!(identity.node_key, NodeIdKey::derive(b"operator-secret"));
    }
}
