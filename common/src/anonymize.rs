//! Node identifiers: a keyed hash that never lets a report holder test guessed node names.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

/// Which algorithm turns a node's name and machine ids into its report id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NodeIdHash {
    /// HMAC-SHA256 under a key that never leaves the cluster (the default).
    #[default]
    Hmac,
    /// Spartakus v1's unkeyed `md5(name + machineID + systemUUID)`, for users who must keep the
    /// node ids their existing Spartakus data has. Anyone holding a report can test guessed node
    /// names against it.
    SpartakusMd5,
}

/// The secret key of node-id hashing. Derived from a secret that stays in the cluster (the
/// `kube-system` namespace UID, or an operator-provided file); `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeIdKey([u8; 32]);

impl NodeIdKey {
    /// Derives the key from secret material (domain-separated SHA-256).
    pub fn derive(secret: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"k8s-usage/node-id-key/v1\0")
            .chain_update(secret)
            .finalize();
        NodeIdKey(digest.into())
    }
}

impl fmt::Debug for NodeIdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeIdKey([redacted])")
    }
}

/// The identifying facts of a node that its id is derived from.
#[derive(Debug, Clone, Copy)]
pub struct NodeIdentity<'a> {
    /// `metadata.name`
    pub name: &'a str,
    /// `status.nodeInfo.machineID`
    pub machine_id: &'a str,
    /// `status.nodeInfo.systemUUID`
    pub system_uuid: &'a str,
}

/// Hex of HMAC-SHA256 over the length-prefixed (u32, big-endian) name, machine id and system
/// UUID, truncated to 32 hex characters.
///
/// Length prefixes keep `("ab", "c")` and `("a", "bc")` apart, which Spartakus's plain
/// concatenation does not.
pub fn hmac_node_id(key: &NodeIdKey, node: NodeIdentity<'_>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    for part in [node.name, node.machine_id, node.system_uuid] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(part.as_bytes());
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Spartakus v1's node id: hex of `md5(name + machineID + systemUUID)`.
pub fn spartakus_md5_node_id(node: NodeIdentity<'_>) -> String {
    let digest = Md5::new()
        .chain_update(node.name.as_bytes())
        .chain_update(node.machine_id.as_bytes())
        .chain_update(node.system_uuid.as_bytes())
        .finalize();
    hex::encode(digest)
}

/// The node's report id under the chosen algorithm.
pub fn node_id(algorithm: NodeIdHash, key: &NodeIdKey, node: NodeIdentity<'_>) -> String {
    match algorithm {
        NodeIdHash::Hmac => hmac_node_id(key, node),
        NodeIdHash::SpartakusMd5 => spartakus_md5_node_id(node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "5f8a2d8e-3b1c-4c7e-9a0e-1d2c3b4a5f60";

    fn node<'a>(name: &'a str, machine_id: &'a str, system_uuid: &'a str) -> NodeIdentity<'a> {
        NodeIdentity {
            name,
            machine_id,
            system_uuid,
        }
    }

    /// Frozen vectors, computed independently with Python's `hmac` and `hashlib`. Changing
    /// either algorithm changes every node id in every stored report: these must never change.
    #[test]
    fn test_vectors() {
        let key = NodeIdKey::derive(UID.as_bytes());
        assert_eq!(
            hex::encode(key.0),
            "8a22522797aa29640e0fe7ddc5cc13c7a020d16a52aed3249dbc7d7583496df6"
        );
        let cases = [
            (
                node("kname", "", ""),
                "c350821127b5ce70a363abfe97551121",
                "95f112d22c3be8721c06b604f0581546",
            ),
            (
                node(
                    "ip-10-0-3-7.eu-west-1.compute.internal",
                    "ec2a1b2c3d4e5f60718293a4b5c6d7e8",
                    "EC2A1B2C-3D4E-5F60-7182-93A4B5C6D7E8",
                ),
                "ed81acfa3d63c63b5e5fe0dbed6c233b",
                "e472e882eba1015d07c70015bc75714d",
            ),
            (
                node("ab", "c", ""),
                "6e9a730a0d8103f94b1ce0809ee49da6",
                "900150983cd24fb0d6963f7d28e17f72",
            ),
            (node("", "", ""), "", "d41d8cd98f00b204e9800998ecf8427e"),
        ];
        for (identity, hmac_id, md5_id) in cases {
            if !hmac_id.is_empty() {
                assert_eq!(node_id(NodeIdHash::Hmac, &key, identity), hmac_id);
            }
            assert_eq!(node_id(NodeIdHash::SpartakusMd5, &key, identity), md5_id);
        }
    }

    #[test]
    fn length_prefixes_separate_fields_md5_does_not() {
        let key = NodeIdKey::derive(UID.as_bytes());
        assert_ne!(
            hmac_node_id(&key, node("ab", "c", "")),
            hmac_node_id(&key, node("a", "bc", ""))
        );
        assert_eq!(
            spartakus_md5_node_id(node("ab", "c", "")),
            spartakus_md5_node_id(node("a", "bc", ""))
        );
    }

    #[test]
    fn the_key_matters_and_never_prints() {
        let a = NodeIdKey::derive(b"cluster-a");
        let b = NodeIdKey::derive(b"cluster-b");
        let n = node("worker-1", "m", "s");
        assert_ne!(hmac_node_id(&a, n), hmac_node_id(&b, n));
        assert_eq!(format!("{a:?}"), "NodeIdKey([redacted])");
    }
}
