#!/usr/bin/env bash
# Runs every test of the workspace from a fresh clone: formatting, unused dependencies, licences,
# lints, then unit, handler, integration and end-to-end tests (the end-to-end tests start the
# built binaries).
set -euo pipefail
cd "$(dirname "$0")"

# Whatever the run leaves behind goes at exit, on failure too: the PostgreSQL server (stopped, its
# directory removed) and the fuzz scratch corpus. One trap, set here: a second would replace it.
postgres_dir=""
scratch=""
cleanup() {
    if [ -n "$postgres_dir" ]; then
        tests/postgres/server.sh stop "$postgres_dir" || true
        rm -rf "$postgres_dir" || true
    fi
    if [ -n "$scratch" ]; then
        rm -rf "$scratch" || true
    fi
}
trap cleanup EXIT

# Rust crates come from crates.io through Cargo; rustfmt and clippy are rustup components of the
# toolchain.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

# The BigQuery sink is tested against a real emulator (PyPI's bqemulator) installed into a
# virtualenv; the tests find it through BQEMULATOR (and run the same script themselves without it).
BQEMULATOR="$(tests/bqemulator/setup.sh)"
export BQEMULATOR

# The OpenAPI contract is tested with schemathesis (PyPI, pinned) against both listeners of a
# running collector (tests/tests/contract.rs); the test finds it through SCHEMATHESIS.
SCHEMATHESIS="$(tests/schemathesis/setup.sh)"
export SCHEMATHESIS

# The README's ten-minute path runs in the suite as written (tests/tests/ten_minutes.rs), curl and
# all; the dashboard is tested in Debian's headless Chromium over WebDriver
# (tests/tests/dashboard_browser.rs).
missing=()
command -v curl >/dev/null || missing+=(curl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2
    else
        echo "${missing[*]} missing and there is no apt-get: install them" >&2
        exit 1
    fi
fi

# Unused dependencies (cargo-machete) and the licences and bans of deny.toml (cargo-deny), both
# installed through Cargo when missing. Advisories need the RustSec database from the network:
# they are not checked here.
install_tool() { # crate version
    "$1" --version 2>/dev/null | grep -qx ".*$2" || cargo install --locked "$1@$2"
}
install_tool cargo-machete 0.9.2
install_tool cargo-deny 0.20.2
# The fuzz targets (fuzz/, its own workspace) are built with cargo-fuzz on the stable toolchain
# with `-s none`: coverage instrumentation without a sanitizer (the sanitizers need nightly).
install_tool cargo-fuzz 0.13.2

cargo fmt --all --check
cargo machete
cargo deny --locked check licenses bans
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
# The PostgreSQL store backend is tested against a real server (Debian's postgresql, installed
# through apt when missing): a throwaway one on a free port, as the unprivileged postgres user;
# tests find it through COLLECTOR_TEST_DATABASE_URL, and with COLLECTOR_REQUIRE_POSTGRES=1 a test
# that cannot reach it fails instead of skipping.
postgres_dir="$(mktemp -d)"
COLLECTOR_TEST_DATABASE_URL="$(tests/postgres/server.sh start "$postgres_dir")"
export COLLECTOR_TEST_DATABASE_URL COLLECTOR_REQUIRE_POSTGRES=1
cargo test --workspace --locked
# The handler tests again, each collector on a fresh PostgreSQL database instead of the embedded
# store (tests/support: COLLECTOR_TEST_BACKEND).
COLLECTOR_TEST_BACKEND=postgres cargo test -p collector --locked --test api --test weekly --test dashboard
tests/postgres/server.sh stop "$postgres_dir"

# The fuzz workspace: formatted and lint-clean like the main one; every target replays its seed
# corpus (fuzz/corpus/<target>, written by fuzz/seeds.py), then fuzzes for a few seconds into a
# scratch corpus, so a crash found on the way fails the run (its input lands in fuzz/artifacts/).
cargo fmt --manifest-path fuzz/Cargo.toml --check
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets --locked -- -D warnings
fuzz_seconds="${FUZZ_SECONDS:-10}"
scratch="$(mktemp -d)" # removed by cleanup at exit
for target in decoder admission gunzip extensions; do
    (cd fuzz && cargo fuzz run -s none "$target" "corpus/$target" -- -runs=0)
    # libFuzzer takes -max_total_time=0 as no limit: 0 means replay only.
    if [ "$fuzz_seconds" -gt 0 ]; then
        mkdir -p "$scratch/$target"
        (cd fuzz && cargo fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
            -max_total_time="$fuzz_seconds" -print_final_stats=1)
    fi
done
