//! The weekly rollup's reads: every complete week's totals and revision, and the cells of the
//! weeks that changed since a reader last looked, from one snapshot of the store.

use std::collections::BTreeMap;

use rusqlite::Connection;

use crate::stats::{Cell, Week};
use crate::store::weekly::{WeekSummary, WeeklyChanges};

/// Reads the totals of every week before `running` (the week still running, which is not
/// published), and the cells of those whose revision differs from `known` (week to revision), in
/// one read transaction.
pub fn changes(
    conn: &Connection,
    known: &BTreeMap<Week, i64>,
    running: Week,
) -> rusqlite::Result<WeeklyChanges> {
    let tx = conn.unchecked_transaction()?;
    let mut result = WeeklyChanges::default();
    {
        let mut select = tx.prepare_cached(
            "SELECT week, revision, active, new, churned, nodes FROM stats_weeks WHERE week < ?1 \
             ORDER BY week",
        )?;
        let mut rows = select.query([running.start()])?;
        while let Some(row) = rows.next()? {
            let week = Week::of(row.get(0)?);
            result.revisions.insert(week, row.get(1)?);
            result.summaries.insert(
                week,
                WeekSummary {
                    active: row.get(2)?,
                    new: row.get(3)?,
                    churned: row.get(4)?,
                    nodes: row.get(5)?,
                },
            );
        }
    }
    let changed: Vec<Week> = result
        .revisions
        .iter()
        .filter(|(week, revision)| known.get(week) != Some(revision))
        .map(|(week, _)| *week)
        .collect();
    let mut select = tx.prepare_cached(
        "SELECT dimension, value, clusters, nodes FROM stats_cells WHERE week = ?1",
    )?;
    for week in changed {
        let cells = select
            .query_map([week.start()], |row| {
                Ok((
                    row.get(0)?,
                    Cell {
                        value: row.get(1)?,
                        clusters: row.get(2)?,
                        nodes: row.get(3)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        result.cells.insert(week, cells);
    }
    drop(select);
    tx.commit()?;
    Ok(result)
}
