//! Report ids: UUID v5, stable across resends, used for idempotent storage and sink dedup.

use uuid::Uuid;

/// The project's fixed UUID namespace for report ids. Never change it: every stored id and every
/// sink's dedup key derives from it.
pub const REPORT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x51c2b3ae_58ec_419c_88dc_6c5aa9db8467);

/// Id of a report that carried a usable timestamp: v5 over the lowercased cluster id and the
/// report's unix seconds. A resend of the same report maps to the same id.
pub fn for_time(cluster_id: &str, seconds: i64) -> Uuid {
    let name = format!("report\0{}\0{seconds}", cluster_id.to_lowercase());
    Uuid::new_v5(&REPORT_ID_NAMESPACE, name.as_bytes())
}

/// Id of a report without a usable timestamp (Spartakus volunteers send none): v5 over the
/// lowercased cluster id, the UTC day it was received (days since the unix epoch) and the SHA-256
/// of its canonical content.
///
/// Content alone would make an unchanged cluster's daily reports one report forever; the day
/// keeps one report per cluster, content and day, so a same-day resend is still a duplicate.
pub fn for_content(cluster_id: &str, received_day: i64, content_sha256: &[u8; 32]) -> Uuid {
    let name = format!(
        "report-content\0{}\0day={received_day}\0{}",
        cluster_id.to_lowercase(),
        hex::encode(content_sha256)
    );
    Uuid::new_v5(&REPORT_ID_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Frozen vectors, computed independently with Python's `uuid.uuid5`.
    #[test]
    fn test_vectors() {
        let cluster = "2f9c93d3-156c-47aa-8802-578ffca9b50e";
        assert_eq!(
            for_time(cluster, 1_763_737_200).to_string(),
            "7310d05a-121a-5ab0-9d93-4cad2e339e82"
        );
        assert_eq!(
            for_time(&cluster.to_uppercase(), 1_763_737_200),
            for_time(cluster, 1_763_737_200)
        );
        let content: [u8; 32] = Sha256::digest(br#"{"x":1}"#).into();
        assert_eq!(
            for_content(cluster, 20_413, &content).to_string(),
            "72e711b1-67b3-5c42-ba88-b31d2ee21ff3"
        );
    }

    #[test]
    fn ids_differ_by_time_day_and_content() {
        let c = "2f9c93d3-156c-47aa-8802-578ffca9b50e";
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_ne!(for_time(c, 1), for_time(c, 2));
        assert_ne!(for_content(c, 1, &a), for_content(c, 2, &a));
        assert_ne!(for_content(c, 1, &a), for_content(c, 1, &b));
        assert_eq!(for_content(c, 1, &a).get_version_num(), 5);
    }
}
