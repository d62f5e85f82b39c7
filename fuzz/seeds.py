#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (corpus/<target>/) from the report fixtures in
common/tests/fixtures (our full report and the Spartakus examples) and a few hand-written edge
cases: deterministic output (gzip without a timestamp), so running it again changes nothing."""

import gzip
import json
import pathlib

here = pathlib.Path(__file__).parent
fixtures = here.parent / "common" / "tests" / "fixtures"

reports = {path.stem: path.read_bytes() for path in sorted(fixtures.glob("*.json"))}
# Forms earlier runs of schemathesis and the hostile-client benchmark found the decoder wrong on.
reports["whole-floats"] = b'{"version":"v1","clusterID":"c","namespaces":3e2,"nodes":[]}'
reports["struct-as-array"] = b'{"version":"v1","clusterID":"c","objects":[null,null]}'
reports["duplicate-keys"] = b'{"version":"v1","version":"v2","clusterID":"c"}'
reports["deep-nesting"] = b'{"extensions":' + b"[" * 200 + b"]" * 200 + b"}"
reports["surrogate"] = b'{"version":"\\ud800","clusterID":"c"}'


def write(target, name, data):
    directory = here / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def gz(data):
    return gzip.compress(data, mtime=0)


for name, body in reports.items():
    write("decoder", name, body)
    # admission: the first byte is the mode (bit 0 gzip, bit 1 relaxed cluster ids).
    write("admission", name, b"\x00" + body)
    write("admission", f"{name}.relaxed", b"\x02" + body)
    write("admission", f"{name}.gz", b"\x01" + gz(body))
    # gunzip: the first two bytes are the limit; one that fits and one that does not.
    write("gunzip", f"{name}.fits", (len(body)).to_bytes(2, "big") + gz(body))
    write("gunzip", f"{name}.over", (len(body) - 1).to_bytes(2, "big") + gz(body))
write("gunzip", "two-members", (4096).to_bytes(2, "big") + gz(b"{}") + gz(b"[]"))
write("gunzip", "truncated", (4096).to_bytes(2, "big") + gz(reports["full-report"])[:-9])

# extensions: key=value lines, from the Spartakus example's extensions and the grammar's edges.
for name in ("spartakus-extensions", "full-report"):
    pairs = json.loads(reports[name]).get("extensions") or []
    lines = "\n".join(f"{pair['name']}={pair['value']}" for pair in pairs)
    write("extensions", name, lines.encode())
write(
    "extensions",
    "edges",
    "\n".join(
        [
            "example.com/team=platform",
            "example.com/team=again",
            "a=" + "x" * 1025,
            "Example.com/upper-prefix=1",
            "/empty-prefix=1",
            "example.com/=empty-name",
            "-leading-dash=1",
            "n" * 64 + "=too-long-name",
            "tab=a\tb",
            "unicode=\u00e9\u2028",
        ]
    ).encode(),
)
