#!/usr/bin/env bash
# Usage: tests/postgres/server.sh start DIR | stop DIR
# A throwaway PostgreSQL server for the tests of the PostgreSQL store backend. `start` creates a
# cluster under DIR (an empty directory the caller made, e.g. with mktemp -d), starts it on a free
# port of 127.0.0.1 and prints its URL, postgres://postgres@127.0.0.1:PORT/postgres (user postgres,
# trust authentication), once it answers a query; `stop` stops it, and does nothing when it is not
# running. The caller removes DIR afterwards. test.sh calls this script around the test run.
#
# The server is Debian's (package postgresql, installed through apt when missing; the highest
# version under /usr/lib/postgresql), which refuses to run as root: run by root, the server runs
# as the unprivileged postgres user (created when missing), so DIR and its parents must be
# traversable by that user. In DIR: data/ (the cluster), socket/ (its Unix socket), port,
# bindir, and the logs initdb.log and server.log (printed in part when the start fails).
set -euo pipefail

usage() {
    echo "usage: $0 start DIR | stop DIR" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
command="$1"
[[ "$command" = start || "$command" = stop ]] || usage

# Runs a server program as the postgres user when run by root, as the caller otherwise.
as_postgres() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Prints the highest installed version's bin directory, or nothing.
find_bindir() {
    local candidate found=""
    while read -r candidate; do
        if [[ -x "$candidate/postgres" && -x "$candidate/initdb" && -x "$candidate/pg_ctl" \
            && -x "$candidate/psql" ]]; then
            found="$candidate"
        fi
    done < <(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V)
    echo "$found"
}

# Prints a TCP port of 127.0.0.1 free at the time of asking (the kernel's choice for port 0).
# Without python3, a random port above 20000 that nothing answers on.
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

stop() {
    local dir="$1"
    [[ -f "$dir/data/postmaster.pid" ]] || return 0
    local bindir
    bindir="$(cat "$dir/bindir" 2>/dev/null || find_bindir)"
    if as_postgres "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_postgres "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null \
            || as_postgres "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >/dev/null \
            || true
    fi
    # Never leave a server behind: whatever pg_ctl managed, the postmaster goes.
    local pid
    pid="$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
}

if [[ "$command" = stop ]]; then
    [[ -d "$2" ]] || exit 0
    dir="$(cd "$2" && pwd)"
    cd "$dir"
    stop "$dir"
    exit 0
fi

[[ -d "$2" ]] || { echo "$2 is not a directory (the caller creates it)" >&2; exit 1; }
dir="$(cd "$2" && pwd)"
[[ -z "$(ls -A "$dir")" ]] || { echo "$dir is not empty" >&2; exit 1; }
# pg_ctl hands the server's options to a shell: DIR goes there quoted, so no quote in it.
[[ "$dir" != *"'"* ]] || { echo "$dir has a quote in its name" >&2; exit 1; }
# The server's programs start in DIR: the caller's working directory may be closed to them.
cd "$dir"

bindir="$(find_bindir)"
if [[ -z "$bindir" ]]; then
    echo "PostgreSQL's server is not installed; installing it (Debian's postgresql)" >&2
    if ! command -v apt-get >/dev/null; then
        echo "no PostgreSQL under /usr/lib/postgresql and no apt-get: install PostgreSQL's server" >&2
        exit 1
    fi
    lock="${XDG_CACHE_HOME:-$HOME/.cache}/k8s-usage/postgres-install.lock"
    mkdir -p "$(dirname "$lock")"
    (
        # One installer at a time: starts may run together.
        flock 9
        if [[ -z "$(find_bindir)" ]]; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
        fi
    ) 9>"$lock" >&2
    bindir="$(find_bindir)"
    [[ -n "$bindir" ]] || { echo "apt installed no PostgreSQL server under /usr/lib/postgresql" >&2; exit 1; }
fi
echo "$bindir" >"$dir/bindir"

mkdir "$dir/data" "$dir/socket"
touch "$dir/server.log"
if [[ $EUID -eq 0 ]]; then
    if ! id -u postgres >/dev/null 2>&1; then
        echo "creating the system user postgres" >&2
        useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
            --shell /usr/sbin/nologin postgres
    fi
    chmod 755 "$dir"
    chown postgres: "$dir/data" "$dir/socket" "$dir/server.log"
    if ! runuser -u postgres -- test -x "$dir"; then
        echo "the postgres user cannot reach $dir: one of its parents is closed to it" >&2
        exit 1
    fi
fi
chmod 700 "$dir/data"

if ! as_postgres "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale \
    >"$dir/initdb.log" 2>&1; then
    echo "initdb failed; the end of $dir/initdb.log:" >&2
    tail -n 30 "$dir/initdb.log" >&2
    exit 1
fi

# Another program may take the port between asking and binding: then another port, a few times.
started=""
for _ in 1 2 3 4 5; do
    port="$(free_port)"
    echo "$port" >"$dir/port"
    options="-p $port -k '$dir/socket'"
    options+=" -c listen_addresses=127.0.0.1 -c max_connections=200"
    options+=" -c fsync=on -c synchronous_commit=on"
    if as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$options" -w -t 60 \
        start >/dev/null; then
        started=1
        break
    fi
    # A server still starting after the wait is stopped before giving up.
    as_postgres "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    grep -q "Address already in use" "$dir/server.log" || break
    echo "port $port was taken; trying another" >&2
done

url="postgres://postgres@127.0.0.1:$port/postgres"
if [[ -n "$started" ]]; then
    for _ in $(seq 1 100); do
        if PGCONNECT_TIMEOUT=2 "$bindir/psql" -X -w -q -A -t -c 'select 1' "$url" >/dev/null 2>&1; then
            echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port," \
                "log in $dir/server.log" >&2
            echo "$url"
            exit 0
        fi
        sleep 0.1
    done
    echo "the server started but does not answer on 127.0.0.1:$port" >&2
    stop "$dir" || true
fi
echo "PostgreSQL did not start; the end of $dir/server.log:" >&2
tail -n 30 "$dir/server.log" >&2
exit 1
