//! Cost of each step of admitting the Spartakus README report (decode, validate, sanitize,
//! serialize) on one core.
//!
//! `cargo run --release -p common --example admit_bench`

use std::hint::black_box;
use std::time::Instant;

const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/spartakus-readme.json");

fn time(label: &str, rounds: u32, mut step: impl FnMut()) {
    let started = Instant::now();
    for _ in 0..rounds {
        step();
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!("{label:<24} {micros:6.2} us");
}

fn main() {
    let rounds = 200_000;
    let report = common::decode::decode(FIXTURE)
        .expect("valid fixture")
        .report;
    time("plain serde decode", rounds, || {
        black_box(serde_json::from_slice::<common::Report>(FIXTURE).unwrap());
    });
    time("decode", rounds, || {
        black_box(common::decode::decode(FIXTURE).unwrap());
    });
    time("validate", rounds, || {
        black_box(common::validate::validate(
            &report,
            common::ClusterIdRule::Uuid,
        ))
        .ok();
    });
    time("clone + sanitize", rounds, || {
        black_box(common::sanitize::report(&mut report.clone()));
    });
    time("serialize", rounds, || {
        black_box(serde_json::to_vec(&report).unwrap());
    });
    time("admit (all of it)", rounds, || {
        black_box(common::admit(FIXTURE, common::ClusterIdRule::Uuid, 1_763_737_200).unwrap());
    });
}
