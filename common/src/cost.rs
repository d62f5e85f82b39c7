//! The most memory admitting one body can take, known from its size before it is read, so that a
//! collector can charge a shared budget up front and refund what the body turned out not to need.
//!
//! Every term is a ceiling the code keeps, and `tests/admit_memory.rs` measures admitting the
//! costliest shapes per byte (tiny nodes, dense capacity lists, long strings, escapes) against
//! it, allocator overhead included.

use crate::report::{MAX_NODES, Node};
use crate::wire::{Encoding, GZIP_MAX_RATIO};

/// Heap per decoded byte: the report's values with allocator overhead (a capacity entry of 28
/// bytes on the wire takes 112 on the heap), and its canonical copy.
pub const DECODED_PER_BYTE: usize = 5;

/// The shortest a node can be on the wire (`{"id":""},`).
const SHORTEST_NODE: usize = 10;

/// What one request's body costs, in bytes, at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// The body as received, in a buffer that may have doubled once while it came in.
    pub wire: usize,
    /// The inflated body (gzip only), at its allocated capacity.
    pub inflated: usize,
    /// The decoded, sanitized report and its canonical encoding.
    pub decoded: usize,
}

impl Cost {
    /// The whole charge.
    pub fn total(&self) -> usize {
        self.wire
            .saturating_add(self.inflated)
            .saturating_add(self.decoded)
    }

    /// The ceiling for a body of `wire_len` bytes in `encoding`, before it is read: a gzip body
    /// is taken to inflate as far as it can, to `limit` at most.
    pub fn before_reading(wire_len: usize, encoding: Encoding, limit: usize) -> Cost {
        let inflated = match encoding {
            Encoding::Identity => 0,
            Encoding::Gzip => wire_len.saturating_mul(GZIP_MAX_RATIO).min(limit),
        };
        Cost::new(wire_len, inflated, encoding)
    }

    /// The ceiling once the body is in and inflated: `inflated` is the inflated buffer's
    /// capacity (ignored for identity bodies, which are decoded where they lie).
    pub fn after_inflating(wire_len: usize, inflated: usize, encoding: Encoding) -> Cost {
        Cost::new(wire_len, inflated, encoding)
    }

    fn new(wire_len: usize, inflated: usize, encoding: Encoding) -> Cost {
        let (inflated, json) = match encoding {
            Encoding::Identity => (0, wire_len),
            Encoding::Gzip => (inflated, inflated),
        };
        Cost {
            wire: wire_len.saturating_mul(2),
            inflated,
            decoded: decoded(json),
        }
    }
}

/// The ceiling for decoding `json_len` bytes of JSON into a sanitized report with its canonical
/// copy: [`DECODED_PER_BYTE`] per byte, plus the node list at its longest (as many nodes as the
/// bytes can hold, at most [`MAX_NODES`]), twice over while it grows.
pub fn decoded(json_len: usize) -> usize {
    let nodes = (json_len / SHORTEST_NODE).min(MAX_NODES);
    json_len
        .saturating_mul(DECODED_PER_BYTE)
        .saturating_add(nodes * 2 * size_of::<Node>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_gzip_body_is_charged_for_what_it_could_inflate_to_and_refunded_after() {
        let before = Cost::before_reading(600, Encoding::Gzip, 32 << 20);
        assert_eq!(before.inflated, 600 * GZIP_MAX_RATIO);
        let after = Cost::after_inflating(600, 5_000, Encoding::Gzip);
        assert!(after.total() * 40 < before.total(), "{after:?} {before:?}");
    }

    #[test]
    fn a_bomb_is_charged_up_to_the_decompressed_limit_and_no_further() {
        let cost = Cost::before_reading(32 << 10, Encoding::Gzip, 32 << 20);
        assert_eq!(cost.inflated, 32 << 20);
        assert_eq!(cost.decoded, decoded(32 << 20));
        assert_eq!(
            Cost::before_reading(8 << 20, Encoding::Gzip, 32 << 20),
            Cost {
                wire: 16 << 20,
                ..cost
            }
        );
    }

    #[test]
    fn an_identity_body_is_decoded_where_it_lies() {
        let cost = Cost::before_reading(2_000, Encoding::Identity, 32 << 20);
        assert_eq!(cost.inflated, 0);
        assert_eq!(cost, Cost::after_inflating(2_000, 99, Encoding::Identity));
        assert_eq!(
            cost.decoded,
            2_000 * DECODED_PER_BYTE + 200 * 2 * size_of::<Node>()
        );
    }
}
