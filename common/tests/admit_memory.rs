//! What admitting a body costs on the heap, measured for the shapes that cost the most per byte,
//! against the ceiling a collector charges its memory budget by (`common::cost`).

use common::cost::{self, Cost};
use common::wire::{Encoding, gzip};
use common::{ClusterIdRule, admit_body};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const CLUSTER: &str = "2f9c93d3-156c-47aa-8802-578ffca9b50e";

/// What glibc's malloc adds to a block at most: a 1-byte string takes a 32-byte chunk.
const ALLOCATOR_OVERHEAD: usize = 32;

fn with_nodes(entry: &str, n: usize) -> String {
    let nodes = vec![entry; n].join(",");
    format!(r#"{{"version":"v1.1.0","clusterID":"{CLUSTER}","nodes":[{nodes}]}}"#)
}

fn with_version(version: &str) -> String {
    format!(r#"{{"version":"{version}","clusterID":"{CLUSTER}"}}"#)
}

/// The heap's peak while admitting `body`, counting each block at its size plus the allocator's
/// overhead.
fn peak_while_admitting(body: &[u8], encoding: Encoding) -> usize {
    let profiler = dhat::Profiler::builder()
        .testing()
        .trim_backtraces(Some(1))
        .build();
    let outcome = admit_body(body, encoding, 32 << 20, ClusterIdRule::Uuid, 1_763_737_200);
    drop(outcome);
    let stats = dhat::HeapStats::get();
    drop(profiler);
    stats.max_bytes + stats.max_blocks * ALLOCATOR_OVERHEAD
}

#[test]
fn admitting_costs_no_more_than_it_is_charged() {
    let facts = r#"{"id":"0","operatingSystem":"a","osImage":"b","kernelVersion":"c","architecture":"d","containerRuntimeVersion":"e","kubeletVersion":"f","cloudProvider":"g"}"#;
    let capacity = format!(
        r#"{{"id":"0","capacity":[{}]}}"#,
        vec![r#"{"resource":"a","value":"1"}"#; 64].join(",")
    );
    let shapes = [
        ("tiny nodes", with_nodes(r#"{"id":"0"}"#, 15_000)),
        ("too many tiny nodes", with_nodes(r#"{"id":"0"}"#, 300_000)),
        ("nodes with every fact", with_nodes(facts, 15_000)),
        ("dense capacity lists", with_nodes(&capacity, 1_500)),
        ("a long string", with_version(&"v".repeat(4 << 20))),
        ("escapes", with_version(&r"\u00e9".repeat(1 << 20))),
    ];
    for (shape, body) in &shapes {
        let json = body.len();
        let identity = peak_while_admitting(body.as_bytes(), Encoding::Identity);
        let charged = Cost::after_inflating(json, 0, Encoding::Identity).decoded;
        println!("{shape}: {json} bytes took {identity} ({charged} charged)");
        assert!(identity <= charged, "{shape}: {identity} > {charged}");

        let wire = gzip(body.as_bytes());
        let inflating = peak_while_admitting(&wire, Encoding::Gzip);
        // A single gzip member is inflated into one allocation of its stated size.
        let charged = Cost::after_inflating(wire.len(), json + 1, Encoding::Gzip);
        let charged = charged.inflated + charged.decoded;
        println!(
            "  gzip, {} bytes: took {inflating} ({charged} charged)",
            wire.len()
        );
        assert!(
            inflating <= charged,
            "{shape} (gzip): {inflating} > {charged}"
        );
        assert!(charged <= Cost::before_reading(wire.len(), Encoding::Gzip, 32 << 20).total());
    }
    assert!(cost::decoded(0) == 0);
}
