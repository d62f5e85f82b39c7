//! The volunteer: snapshots a cluster into a report. Only the report format exists so far; the
//! snapshot, schedule and delivery arrive with the volunteer issue.

pub use common::report::SCHEMA_VERSION;
