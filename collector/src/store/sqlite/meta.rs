//! The `meta` table: small named values the store keeps beside its data (watermarks, counters,
//! fingerprints, the last write check).

use rusqlite::{Connection, OptionalExtension, params};

/// The value of `key`, if set.
pub(super) fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
}

/// The value of `key` as a number; 0 when unset (or not a number).
pub(super) fn get_i64(conn: &Connection, key: &str) -> rusqlite::Result<i64> {
    Ok(get(conn, key)?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Sets `key` to `value`.
pub(super) fn set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
