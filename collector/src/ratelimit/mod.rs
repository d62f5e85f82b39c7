//! Rate limiting: per cluster id ([`ClusterRateLimiter`]) and per source address
//! ([`SourceLimits`]), both GCRA (`governor`) over a bounded LRU of keyed hashes, so that a flood
//! of random ids or addresses evicts old state instead of growing memory.

mod cluster;
mod keyed;
mod source;

pub use cluster::ClusterRateLimiter;
pub use source::{KnownClusters, SourceLimits, SourceRefusal, SourceSettings, source_address};
