//! Lists with a most-entries limit that decoding enforces as it goes: a body of 3 million tiny
//! nodes is refused at the 15,001st, never built whole and then counted.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::object::Entry;
use super::{Extension, Node, Resource, Skipped};

/// Most nodes in one report: three times Kubernetes' supported maximum of 5,000.
pub const MAX_NODES: usize = 15_000;
/// Most capacity entries on one node.
pub const MAX_CAPACITY_ENTRIES: usize = 64;
/// Most extensions in one report.
pub const MAX_EXTENSIONS: usize = 100;
/// Most skipped-section entries in one report.
pub const MAX_SKIPPED: usize = 64;

/// An entry of a list whose length the format bounds.
pub trait Bounded: Sized {
    /// Most entries accepted.
    const MAX: usize;
    /// What the entries are called in an error ("nodes", "entries").
    const NOUN: &'static str;
}

impl Bounded for Node {
    const MAX: usize = MAX_NODES;
    const NOUN: &'static str = "nodes";
}

impl Bounded for Resource {
    const MAX: usize = MAX_CAPACITY_ENTRIES;
    const NOUN: &'static str = "entries";
}

impl Bounded for Extension {
    const MAX: usize = MAX_EXTENSIONS;
    const NOUN: &'static str = "extensions";
}

impl Bounded for Skipped {
    const MAX: usize = MAX_SKIPPED;
    const NOUN: &'static str = "entries";
}

/// Decodes a list of at most `T::MAX` entries; `null` is the empty list (Go writes an empty
/// slice as `null`). One entry more is an error, raised before that entry is built.
pub fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Bounded + Deserialize<'de>,
{
    deserializer.deserialize_option(OptionalList(PhantomData))
}

fn expecting<T: Bounded>(formatter: &mut fmt::Formatter) -> fmt::Result {
    write!(formatter, "a list of at most {} {}", T::MAX, T::NOUN)
}

struct OptionalList<T>(PhantomData<T>);

impl<'de, T: Bounded + Deserialize<'de>> Visitor<'de> for OptionalList<T> {
    type Value = Vec<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        expecting::<T>(formatter)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(List(PhantomData))
    }
}

struct List<T>(PhantomData<T>);

impl<'de, T: Bounded + Deserialize<'de>> Visitor<'de> for List<T> {
    type Value = Vec<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        expecting::<T>(formatter)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // The hint comes from the body's author: believe it only up to the limit.
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(T::MAX));
        while entries.len() < T::MAX {
            match seq.next_element_seed(Entry::<T>::default())? {
                Some(entry) => entries.push(entry),
                None => return Ok(entries),
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format_args!(
                "more than {max} {noun}; at most {max} are accepted",
                max = T::MAX,
                noun = T::NOUN
            )));
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use crate::decode::decode;

    fn nodes(n: usize) -> String {
        let nodes = vec![r#"{"id":"0"}"#; n].join(",");
        format!(r#"{{"version":"v1.1.0","clusterID":"x","nodes":[{nodes}]}}"#)
    }

    #[test]
    fn a_list_at_its_limit_decodes_and_one_more_is_refused_with_its_field() {
        assert_eq!(
            decode(nodes(super::MAX_NODES).as_bytes())
                .unwrap()
                .report
                .nodes
                .len(),
            super::MAX_NODES
        );
        let problem = decode(nodes(super::MAX_NODES + 1).as_bytes()).unwrap_err();
        assert_eq!(problem.field, "nodes");
        assert!(
            problem
                .message
                .starts_with("more than 15000 nodes; at most 15000 are accepted"),
            "{problem:?}"
        );

        let capacity = vec![r#"{"resource":"cpu","value":"1"}"#; 65].join(",");
        let body = format!(r#"{{"nodes":[{{"id":"a"}},{{"id":"b","capacity":[{capacity}]}}]}}"#);
        let problem = decode(body.as_bytes()).unwrap_err();
        assert_eq!(problem.field, "nodes[1].capacity", "{problem:?}");
    }

    #[test]
    fn null_and_empty_lists_are_empty() {
        for body in [
            r#"{"nodes":null,"extensions":[],"skipped":null}"#,
            r#"{"nodes":[{"id":"a","capacity":null}]}"#,
        ] {
            let report = decode(body.as_bytes()).unwrap().report;
            assert!(report.extensions.is_empty() && report.skipped.is_empty());
            assert!(report.nodes.iter().all(|node| node.capacity.is_empty()));
        }
        assert!(decode(br#"{"nodes":{"id":"a"}}"#).is_err());
    }
}
