#!/usr/bin/env bash
# Reports known vulnerabilities (the Go vulnerability database) in the code converge calls:
# its modules and the Go standard library, at the Go version that builds it. Exit 1 when a
# vulnerability is reachable from converge's code.
#
#   VULNDB=URL       the database (default https://vuln.go.dev; file:///DIR for a local copy)
#   VULNCHECK=require  fail when the database cannot be reached, instead of skipping
#
# The database is a web service, not a Go module: a machine that reaches only the package
# registries (such as CI here) cannot consult it. There the check is SKIPPED with a warning and
# exit 0, unless VULNCHECK=require (use that where a vulnerability report matters: a release
# build, a machine with network access).
set -euo pipefail

cd "$(dirname "$0")/.."
db="${VULNDB:-https://vuln.go.dev}"

bin="$(bash scripts/install-govulncheck.sh | tail -n 1)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

status=0
# bounded: a database host that does not answer must not hang the build
timeout 600 "$bin" -db "$db" ./... >"$out" 2>&1 || status=$?
cat "$out" >&2
if [[ $status -eq 0 ]]; then
    echo "vulncheck: no known vulnerability reachable from converge (database ${db})" >&2
    exit 0
fi
if [[ $status -eq 124 ]] || grep -q '^govulncheck: fetching vulnerabilities' "$out"; then
    msg="vulncheck: the vulnerability database ${db} cannot be reached from this machine (see above), so nothing was checked"
    if [[ "${VULNCHECK:-}" == "require" ]]; then
        echo "ERROR: ${msg}. Run where ${db} is reachable, or point VULNDB at a local copy (file:///DIR)." >&2
        exit 1
    fi
    echo "WARNING: ${msg}: SKIPPED. Set VULNCHECK=require to make this an error, VULNDB=file:///DIR to use a local copy." >&2
    exit 0
fi
echo "ERROR: vulncheck: govulncheck exited ${status}: the vulnerabilities above are reachable from converge; upgrade the modules (go get MODULE@FIXED && go mod tidy) or Go" >&2
exit 1
