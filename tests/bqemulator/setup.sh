#!/usr/bin/env bash
# Installs the BigQuery emulator (PyPI's bqemulator, DuckDB-backed) into a virtualenv, idempotently,
# and prints the path of its `bqemulator` program. The end-to-end tests run it for the BigQuery
# sink; test.sh calls this script, and the tests call it themselves when BQEMULATOR is not set.
#
# As a new user finds it: bqemulator needs duckdb, its spatial extension and numpy pinned beside
# it, and the spatial extension file copied where DuckDB looks for it, or it tries to download
# the extension at start and fails offline.
set -euo pipefail

venv="${BQEMULATOR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-usage/bqemulator-venv}"
duckdb_version=1.5.5
requirements=(
    "bqemulator==1.4.0"
    "duckdb==${duckdb_version}"
    "duckdb-extension-spatial==${duckdb_version}"
    "numpy"
)
marker="$venv/.installed-$(printf '%s\n' "${requirements[@]}" | sha256sum | cut -c1-16)"

install() {
    if ! python3 -m venv --help >/dev/null 2>&1; then
        echo "python3 with venv is needed; installing it" >&2
        if command -v apt-get >/dev/null; then
            (apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip) >&2
        else
            echo "no python3 venv and no apt-get: install Python 3.10+ with venv" >&2
            exit 1
        fi
    fi
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}" >&2
    touch "$marker"
}

mkdir -p "$(dirname "$venv")"
(
    # One installer at a time: test processes may start together.
    flock 9
    [[ -f "$marker" && -x "$venv/bin/bqemulator" ]] || install
) 9>"$venv.lock"

# DuckDB looks for extensions in ~/.duckdb/extensions/v<version>/<platform>/.
case "$(uname -m)" in
    x86_64) platform=linux_amd64 ;;
    aarch64) platform=linux_arm64 ;;
    *) echo "unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
extension=$(find "$venv" -name spatial.duckdb_extension -print -quit)
if [[ -z "$extension" ]]; then
    echo "duckdb-extension-spatial did not install spatial.duckdb_extension" >&2
    exit 1
fi
target="$HOME/.duckdb/extensions/v${duckdb_version}/${platform}"
mkdir -p "$target"
cmp -s "$extension" "$target/spatial.duckdb_extension" || cp "$extension" "$target/"

echo "$venv/bin/bqemulator"
