//! Weekly fleet statistics, without I/O: ISO weeks, the registry of dimensions, the fold of a
//! report into its week's cells, and the minimum group size applied before anything is published.

mod buckets;
pub mod dimensions;
pub mod fold;
pub mod threshold;
mod versions;
pub mod week;

pub use dimensions::{
    Dimension, EXTENSION_KEYS, EXTENSION_PREFIX, NOT_REPORTED, OTHER, REGISTRY, Scope,
};
pub use fold::{CellChange, CellDeltas, contributions};
pub use threshold::{Cell, publish_week};
pub use week::Week;
