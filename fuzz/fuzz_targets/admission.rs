//! Fuzz target: `fuzz::admission` on each input (see its documentation for what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::admission(data));
