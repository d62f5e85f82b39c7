#!/usr/bin/env bash
# Installs schemathesis (PyPI), pinned, into a virtualenv, idempotently, and prints the path of
# its `schemathesis` program. The contract test (tests/tests/contract.rs) runs it against both
# listeners of a running collector; test.sh calls this script, and the test calls it itself when
# SCHEMATHESIS is not set.
set -euo pipefail

venv="${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-usage/schemathesis-venv}"
exec "$(dirname "$0")/../python-venv.sh" "$venv" schemathesis "schemathesis==4.32.5"
