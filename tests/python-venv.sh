#!/usr/bin/env bash
# Usage: python-venv.sh VENV PROGRAM REQUIREMENT...
# Installs the pinned REQUIREMENTs from PyPI into the virtualenv VENV, idempotently (again only
# when the requirements change), and prints the path of its program PROGRAM. The installers of
# the test suite's Python tools (bqemulator/, schemathesis/) call it.
set -euo pipefail

venv="$1"
program="$2"
shift 2
requirements=("$@")
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
    [[ -f "$marker" && -x "$venv/bin/$program" ]] || install
) 9>"$venv.lock"

echo "$venv/bin/$program"
