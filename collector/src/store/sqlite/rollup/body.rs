//! A stored report as the rollup reads it on the embedded store: a damaged one is left out.

use common::Report;
use rusqlite::Row;

use crate::store::sqlite::sql::report_body;

/// The stored report in column `index` of `row`, or `None` (with a warning) when it cannot be
/// read: one damaged row must not stop the statistics, nor an erasure.
pub(super) fn readable_body(
    row: &Row<'_>,
    index: usize,
    seq: i64,
) -> rusqlite::Result<Option<Report>> {
    match report_body(row, index, seq, 0) {
        Ok(report) => Ok(Some(report)),
        Err(rusqlite::Error::FromSqlConversionFailure(_, _, error)) => {
            tracing::warn!(seq, %error, "a stored report cannot be read; the weekly statistics leave it out");
            Ok(None)
        }
        Err(other) => Err(other),
    }
}
