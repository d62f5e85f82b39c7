//! The `meta` table on PostgreSQL: the same named values as the embedded store keeps
//! (watermarks, counters, fingerprints).

use tokio_postgres::GenericClient;

/// The value of `key`, if set.
pub(super) async fn get(
    client: &impl GenericClient,
    key: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
        .await?
        .map(|row| row.get(0)))
}

/// The value of `key` as a number; 0 when unset (or not a number).
pub(super) async fn get_i64(
    client: &impl GenericClient,
    key: &str,
) -> Result<i64, tokio_postgres::Error> {
    Ok(get(client, key)
        .await?
        .and_then(|value| value.parse().ok())
        .unwrap_or(0))
}

/// Sets `key` to `value`.
pub(super) async fn set(
    client: &impl GenericClient,
    key: &str,
    value: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await?;
    Ok(())
}
