#!/usr/bin/env bash
# Runs every test of the workspace from a fresh clone: formatting, lints, then unit, handler,
# integration and end-to-end tests (the end-to-end tests start the built binaries).
set -euo pipefail
cd "$(dirname "$0")"

# Rust crates come from crates.io through Cargo; rustfmt and clippy are rustup components of the
# toolchain.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

# The BigQuery sink is tested against a real emulator (PyPI's bqemulator) installed into a
# virtualenv; the tests find it through BQEMULATOR (and run the same script themselves without it).
BQEMULATOR="$(tests/bqemulator/setup.sh)"
export BQEMULATOR

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo test --workspace --locked
