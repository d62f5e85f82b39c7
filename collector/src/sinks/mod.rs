//! Where stored reports are forwarded: one module per sink, all behind the [`Sink`] trait, built
//! from the `[[sink]]` tables of the configuration file.

mod bigquery;
mod config;
mod file;
mod http;
mod http_forward;
pub mod kind;
mod segment;
mod sink;
mod summary;
mod table;
mod woopra;

pub use config::{Configured, SinkConfig, load, parse, parse_file};
pub use kind::SinkKind;
pub use sink::{ItemOutcome, Replied, Reply, RequestLimits, RequestStats, Sent, Sink};
/// A delivery of a three-node report with an extension, for tests.
#[cfg(test)]
pub(crate) use summary::tests::item as sample_item;
pub use summary::{analytics_id, summary};
