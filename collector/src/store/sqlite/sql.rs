//! Columns read as the store's types. A stored value that does not parse is an error naming its
//! report, never a silent fallback.

use std::str::FromStr;

use common::report::Report;
use rusqlite::Row;
use rusqlite::types::Type;
use uuid::Uuid;

use crate::store::listing::{BadValue, stored_body};

fn bad(index: usize, kind: Type, error: BadValue) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, kind, Box::new(error))
}

/// Column `index` (named `column`) of report `seq`, parsed from its text.
pub(super) fn parsed<T: FromStr>(
    row: &Row<'_>,
    index: usize,
    column: &'static str,
    seq: i64,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    text.parse().map_err(|_| {
        bad(
            index,
            Type::Text,
            BadValue {
                seq,
                column,
                value: text,
                expected: std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("known"),
            },
        )
    })
}

/// The report id in column `index` (16 bytes) of report `seq`.
pub(super) fn report_id(row: &Row<'_>, index: usize, seq: i64) -> rusqlite::Result<Uuid> {
    let bytes: Vec<u8> = row.get(index)?;
    Uuid::from_slice(&bytes).map_err(|_| {
        bad(
            index,
            Type::Blob,
            BadValue {
                seq,
                column: "id",
                value: hex::encode(&bytes),
                expected: "a 16-byte UUID",
            },
        )
    })
}

/// The report body in column `index` of report `seq`, with `timestamp` set to its time.
pub(super) fn report_body(
    row: &Row<'_>,
    index: usize,
    seq: i64,
    report_time: i64,
) -> rusqlite::Result<Report> {
    let body: String = row.get(index)?;
    stored_body(&body, report_time).map_err(|error| {
        bad(
            index,
            Type::Text,
            BadValue {
                seq,
                column: "body",
                value: error.to_string(),
                expected: "a report",
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::time::TimeSource;
    use rusqlite::Connection;

    #[test]
    fn a_value_that_does_not_parse_names_its_report() {
        let conn = Connection::open_in_memory().unwrap();
        let error = conn
            .query_row("SELECT 'sideways', x'0102'", [], |row| {
                parsed::<TimeSource>(row, 0, "time_source", 42)
            })
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("report seq 42") && error.contains("sideways"),
            "{error}"
        );
        let error = conn
            .query_row("SELECT x'0102'", [], |row| report_id(row, 0, 7))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("report seq 7") && error.contains("0102"),
            "{error}"
        );
        let time: TimeSource = conn
            .query_row("SELECT 'client'", [], |row| {
                parsed(row, 0, "time_source", 1)
            })
            .unwrap();
        assert_eq!(time, TimeSource::Client);
    }
}
