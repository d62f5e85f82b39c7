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
program=$("$(dirname "$0")/../python-venv.sh" "$venv" bqemulator "${requirements[@]}")

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

echo "$program"
