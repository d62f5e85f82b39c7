//! Node capacity: standard resources and allow-listed vendors' extended resources, with
//! quantity values; and node ids, which must be hashes.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::extensions;

/// Vendor domains whose extended resources (`nvidia.com/gpu`, `gpu.intel.com/i915`) are kept.
pub const RESOURCE_VENDOR_DOMAINS: &[&str] = &[
    "nvidia.com",
    "amd.com",
    "intel.com",
    "xilinx.com",
    "habana.ai",
    "amazonaws.com",
    "aws.amazon.com",
    "google.com",
    "qualcomm.com",
    "arm.com",
    "devices.kubevirt.io",
    "squat.ai",
];

/// Standard resource names kept as they are.
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "pods",
    "ephemeral-storage",
    "storage",
    "alpha.kubernetes.io/nvidia-gpu",
    "attachable-volumes-aws-ebs",
    "attachable-volumes-azure-disk",
    "attachable-volumes-gce-pd",
    "attachable-volumes-cinder",
];

/// True for a standard resource name or an extended resource of an allow-listed vendor domain;
/// other capacity entries are dropped.
pub fn is_allowed_resource(raw: &str) -> bool {
    if STANDARD_RESOURCES.contains(&raw) || is_hugepages(raw) {
        return true;
    }
    let Some((domain, _)) = raw.split_once('/') else {
        return false;
    };
    let vendor = RESOURCE_VENDOR_DOMAINS.iter().any(|allowed| {
        domain == *allowed
            || domain
                .strip_suffix(allowed)
                .is_some_and(|sub| sub.ends_with('.'))
    });
    vendor && extensions::qualified_name_problem(raw).is_none()
}

/// `hugepages-<size>`, e.g. `hugepages-2Mi`.
fn is_hugepages(raw: &str) -> bool {
    let Some(size) = raw.strip_prefix("hugepages-") else {
        return false;
    };
    let digits = size.bytes().take_while(u8::is_ascii_digit).count();
    (1..=6).contains(&digits) && matches!(&size[digits..], "" | "Ki" | "Mi" | "Gi" | "Ti")
}

/// True for a non-negative Kubernetes quantity of at most 32 characters (`4`, `15437428Ki`,
/// `500m`, `1.5Gi`, `1e3`).
pub fn is_quantity(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.is_empty() || bytes.len() > 32 {
        return false;
    }
    let whole = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = whole;
    let mut fraction = 0;
    if bytes.get(i) == Some(&b'.') {
        fraction = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        i += 1 + fraction;
    }
    if whole + fraction == 0 {
        return false;
    }
    let suffix = &raw[i..];
    match suffix.as_bytes() {
        [] => true,
        [b'e' | b'E', exponent @ ..] => {
            let digits = exponent
                .strip_prefix(b"+")
                .or(exponent.strip_prefix(b"-"))
                .unwrap_or(exponent);
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
        }
        _ => matches!(
            suffix,
            "Ki" | "Mi"
                | "Gi"
                | "Ti"
                | "Pi"
                | "Ei"
                | "n"
                | "u"
                | "m"
                | "k"
                | "M"
                | "G"
                | "T"
                | "P"
                | "E"
        ),
    }
}

/// The node id when it is already a 32-hex-character hash (lowercased); anything else, such as a
/// raw node name sent by a third-party volunteer, is replaced by a hash of itself.
pub fn node_id(raw: &str) -> Cow<'_, str> {
    if raw.len() == 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Cow::Borrowed(raw);
    }
    if raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Cow::Owned(raw.to_ascii_lowercase());
    }
    let digest = Sha256::new()
        .chain_update(b"k8s-usage/collector/node-id\0")
        .chain_update(raw.as_bytes())
        .finalize();
    Cow::Owned(hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_resources_and_quantities() {
        let resources = [
            ("cpu", true),
            ("memory", true),
            ("pods", true),
            ("ephemeral-storage", true),
            ("hugepages-2Mi", true),
            ("hugepages-1Gi", true),
            ("alpha.kubernetes.io/nvidia-gpu", true),
            ("nvidia.com/gpu", true),
            ("nvidia.com/mig-1g.10gb", true),
            ("gpu.intel.com/i915", true),
            ("amd.com/gpu", true),
            ("acme.com/gpu", false),
            ("notnvidia.com/gpu", false),
            ("openshift.io/sriov-prod-db", false),
            ("nvidia.com/", false),
            ("widgets", false),
        ];
        for (name, kept) in resources {
            assert_eq!(is_allowed_resource(name), kept, "{name}");
        }
        let quantities = [
            ("4", true),
            ("15437428Ki", true),
            ("500m", true),
            ("1.5Gi", true),
            ("1e3", true),
            ("-1", false),
            ("lots", false),
            ("4 cores", false),
            ("", false),
        ];
        for (value, kept) in quantities {
            assert_eq!(is_quantity(value), kept, "{value}");
        }
    }

    #[test]
    fn node_ids_are_hashes() {
        assert_eq!(
            node_id("c8863d09ecc5be8d9791f72acd275fc2"),
            "c8863d09ecc5be8d9791f72acd275fc2"
        );
        assert_eq!(
            node_id("C8863D09ECC5BE8D9791F72ACD275FC2"),
            "c8863d09ecc5be8d9791f72acd275fc2"
        );
        let hashed = node_id("ip-10-0-3-7.eu-west-1.compute.internal");
        assert_eq!(hashed.len(), 32);
        assert!(!hashed.contains("10-0-3-7"));
        assert_eq!(node_id(&hashed), hashed);
    }
}
