//! The migrations: applied once, refused on a newer or a differently migrated store, a store from
//! before refinery recorded as it stands, version 5's cluster numbers keeping
//! every report and statistic of a version-4 store, and version 6's sink positions.

use super::*;

#[test]
fn migrations_apply_once_and_refuse_newer_stores() {
    let mut conn = Connection::open_in_memory().unwrap();
    let path = Path::new("memory");
    migrate(&mut conn, path).unwrap();
    migrate(&mut conn, path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = migrate(&mut conn, path).unwrap_err().to_string();
    assert!(err.contains("newer collector"), "{err}");
}

/// A store at schema version 4 holding two clusters, a report whose cluster row is missing,
/// and the weekly statistics of the two; `stray` adds a statistics row of an unknown cluster.
fn store_at_version_4(stray: bool) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    for (_, sql) in &MIGRATIONS[..4] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 4).unwrap();
    let report = |seq: i64, cluster: &str, received_at: i64, version: &str| {
        conn.execute(
            "INSERT INTO reports (seq, cluster_id, id, report_time, time_source, received_at, \
             content_sha256, master_version, node_count, body) \
             VALUES (?1, ?2, ?3, ?4, 'report', ?4, x'00', ?5, 1, '{}')",
            rusqlite::params![seq, cluster, vec![seq as u8; 16], received_at, version],
        )
        .unwrap();
    };
    report(1, "b-cluster", 100, "v1.30.0");
    report(2, "a-cluster", 200, "v1.31.0");
    report(3, "b-cluster", 300, "v1.31.2");
    report(4, "c-orphan", 400, "v1.29.0");
    report(5, "c-orphan", 500, "v1.29.1");
    conn.execute_batch(
        "INSERT INTO clusters VALUES ('b-cluster', 100, 300, 2, 3, 300, 'v1.31.2', 1); \
         INSERT INTO clusters VALUES ('a-cluster', 200, 200, 1, 2, 200, 'v1.31.0', 1); \
         INSERT INTO stats_cluster_weeks VALUES (0, 'a-cluster', 2, 200, 1); \
         INSERT INTO stats_cluster_weeks VALUES (0, 'b-cluster', 3, 300, 1); \
         INSERT INTO stats_clusters VALUES ('a-cluster', 0); \
         INSERT INTO stats_clusters VALUES ('b-cluster', 0); \
         INSERT INTO meta VALUES ('stats_registry', 'fingerprint');",
    )
    .unwrap();
    if stray {
        conn.execute_batch("INSERT INTO stats_clusters VALUES ('z-gone', 0);")
            .unwrap();
    }
    conn
}

fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut statement = conn.prepare(sql).unwrap();
    let rows = statement
        .query_map([], |row| {
            let values: Vec<String> = (0..row.as_ref().column_count())
                .map(|i| match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    rusqlite::types::ValueRef::Text(v) => String::from_utf8_lossy(v).into(),
                    other => format!("{other:?}"),
                })
                .collect();
            Ok(values.join(" "))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn numbering_clusters_keeps_every_report_and_statistic() {
    let mut conn = store_at_version_4(false);
    migrate(&mut conn, Path::new("memory")).unwrap();
    assert_eq!(
        rows(
            &conn,
            "SELECT cluster_no, cluster_id, first_seen, last_seen, reports, latest_seq, \
             latest_master_version FROM clusters ORDER BY cluster_no"
        ),
        [
            "1 a-cluster 200 200 1 2 v1.31.0",
            "2 b-cluster 100 300 2 3 v1.31.2",
            "3 c-orphan 400 500 2 5 v1.29.1",
        ],
        "numbered in id order; the orphan reports got their cluster"
    );
    assert_eq!(
        rows(
            &conn,
            "SELECT cluster_no, seq FROM report_keys ORDER BY seq"
        ),
        ["2 1", "1 2", "2 3", "3 4", "3 5"]
    );
    assert_eq!(
        rows(&conn, "SELECT * FROM stats_cluster_weeks"),
        ["0 1 2 200 1", "0 2 3 300 1"]
    );
    assert_eq!(rows(&conn, "SELECT * FROM stats_clusters"), ["1 0", "2 0"]);
    assert_eq!(
        rows(&conn, "SELECT value FROM meta WHERE key = 'stats_registry'"),
        ["fingerprint"],
        "statistics that were all numbered are kept"
    );
    assert!(
        rows(
            &conn,
            "SELECT name FROM sqlite_master WHERE name = 'reports_by_cluster'"
        )
        .is_empty()
    );
    conn.execute(
        "INSERT INTO clusters (cluster_id, first_seen, last_seen, reports, latest_seq, \
         latest_report_time, latest_node_count) VALUES ('d', 0, 0, 1, 6, 0, 1)",
        [],
    )
    .unwrap();
    conn.execute("DELETE FROM clusters WHERE cluster_id = 'd'", [])
        .unwrap();
    conn.execute(
        "INSERT INTO clusters (cluster_id, first_seen, last_seen, reports, latest_seq, \
         latest_report_time, latest_node_count) VALUES ('e', 0, 0, 1, 7, 0, 1)",
        [],
    )
    .unwrap();
    assert_eq!(
        rows(
            &conn,
            "SELECT cluster_no FROM clusters WHERE cluster_id = 'e'"
        ),
        ["5"],
        "a number is never given twice"
    );
}

#[test]
fn a_migration_without_room_says_so_and_leaves_the_store_as_it_was() {
    let mut conn = store_at_version_4(false);
    for seq in 6..2_000_i64 {
        conn.execute(
            "INSERT INTO reports (seq, cluster_id, id, report_time, time_source, \
             received_at, content_sha256, node_count, body) \
             VALUES (?1, 'b-cluster', ?2, 0, 'report', 0, x'00', 1, '{}')",
            rusqlite::params![seq, seq.to_be_bytes().to_vec()],
        )
        .unwrap();
    }
    let pages: i64 = conn
        .pragma_query_value(None, "page_count", |row| row.get(0))
        .unwrap();
    conn.pragma_update(None, "max_page_count", pages + 1)
        .unwrap();
    let err = migrate(&mut conn, Path::new("memory"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is full"), "{err}");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 4);
    assert_eq!(rows(&conn, "SELECT count(*) FROM reports"), ["1999"]);
}

#[test]
fn statistics_that_cannot_be_numbered_are_rebuilt() {
    let mut conn = store_at_version_4(true);
    migrate(&mut conn, Path::new("memory")).unwrap();
    assert!(rows(&conn, "SELECT value FROM meta WHERE key = 'stats_registry'").is_empty());
}

#[test]
fn each_known_sink_starts_at_the_last_report_with_its_rows_kept() {
    let mut conn = store_at_version_4(false);
    conn.execute_batch(
        "INSERT INTO sinks VALUES ('segment', 'segment', 0), ('gone', 'jsonl', 0); \
         INSERT INTO sink_coverage VALUES ('segment', 1, NULL), ('gone', 1, 3); \
         INSERT INTO deliveries (sink, report_seq, state, created_at) \
           VALUES ('segment', 4, 'pending', 400), ('segment', 5, 'dead', 500);",
    )
    .unwrap();
    migrate(&mut conn, Path::new("memory")).unwrap();
    assert_eq!(
        rows(&conn, "SELECT * FROM sink_positions ORDER BY sink"),
        ["gone 5 0", "segment 5 0"]
    );
    assert_eq!(
        rows(
            &conn,
            "SELECT sink, report_seq, state FROM deliveries ORDER BY report_seq"
        ),
        ["segment 4 pending", "segment 5 dead"]
    );
}

#[test]
fn a_store_from_before_refinery_is_recorded_as_it_stands_and_carries_on() {
    let mut conn = store_at_version_4(false);
    migrate(&mut conn, Path::new("memory")).unwrap();
    let history = rows(
        &conn,
        "SELECT version, name FROM refinery_schema_history ORDER BY version",
    );
    assert_eq!(
        history,
        [
            "1 reports",
            "2 outbox",
            "3 outbox_without_indexes",
            "4 weekly_statistics",
            "5 cluster_numbers",
            "6 sink_positions"
        ]
    );
    // Migrations 1-4 were not run again: their tables kept the rows they held.
    assert_eq!(rows(&conn, "SELECT count(*) FROM reports"), ["5"]);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    migrate(&mut conn, Path::new("memory")).unwrap();
    assert_eq!(
        rows(&conn, "SELECT count(*) FROM refinery_schema_history"),
        [SCHEMA_VERSION.to_string()]
    );
}

#[test]
fn a_store_whose_migrations_differ_from_this_build_is_refused() {
    let path = Path::new("memory");
    let mut edited = Connection::open_in_memory().unwrap();
    migrate(&mut edited, path).unwrap();
    edited
        .execute_batch("UPDATE refinery_schema_history SET checksum = '1' WHERE version = 2")
        .unwrap();
    let err = migrate(&mut edited, path).unwrap_err().to_string();
    assert!(err.contains("differently"), "{err}");

    let mut newer = Connection::open_in_memory().unwrap();
    migrate(&mut newer, path).unwrap();
    newer
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (?1, 'later', '2027-01-01T00:00:00Z', '1')",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
    let err = migrate(&mut newer, path).unwrap_err().to_string();
    assert!(err.contains("newer collector"), "{err}");
}

#[test]
fn a_migration_whose_record_was_cut_off_is_recorded_not_run_again() {
    let path = Path::new("memory");
    let mut conn = store_at_version_4(false);
    migrate(&mut conn, path).unwrap();
    // As if the process died between migration 6's commit and the row recording it, or
    // between creating the history table and filling it.
    conn.execute_batch("DELETE FROM refinery_schema_history WHERE version = 6")
        .unwrap();
    migrate(&mut conn, path).unwrap();
    assert_eq!(
        rows(&conn, "SELECT max(version) FROM refinery_schema_history"),
        [SCHEMA_VERSION.to_string()]
    );
    conn.execute_batch("DELETE FROM refinery_schema_history")
        .unwrap();
    migrate(&mut conn, path).unwrap();
    assert_eq!(
        rows(&conn, "SELECT count(*) FROM refinery_schema_history"),
        [SCHEMA_VERSION.to_string()]
    );
    assert_eq!(rows(&conn, "SELECT count(*) FROM reports"), ["5"]);
}
