//! Fuzz target: `fuzz::extensions` on each input (see its documentation for what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::extensions(data));
