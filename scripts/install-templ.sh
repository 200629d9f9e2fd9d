#!/usr/bin/env bash
# Installs the templ CLI into ./bin at exactly the version of github.com/a-h/templ in go.mod,
# so generated *_templ.go files match the runtime library. Skips when ./bin/templ already is
# that version. The last line printed is the binary's path.
set -euo pipefail

cd "$(dirname "$0")/.."
root="$(pwd)"
bin="${root}/bin/templ"

log() { printf 'install-templ: %s\n' "$*" >&2; }
die() { printf 'install-templ: ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "'go' is required but not found in PATH"

version="$(go list -m -f '{{.Version}}' github.com/a-h/templ 2>/dev/null)" ||
    die "github.com/a-h/templ is not in go.mod"
[[ -n "$version" ]] || die "could not read the templ version from go.mod"

if [[ -x "$bin" ]] && [[ "$("$bin" version 2>/dev/null)" == "$version" ]]; then
    log "templ ${version} already installed"
    echo "$bin"
    exit 0
fi

log "installing templ ${version} into ./bin"
mkdir -p "${root}/bin"
GOBIN="${root}/bin" go install "github.com/a-h/templ/cmd/templ@${version}"

got="$("$bin" version 2>/dev/null || true)"
[[ "$got" == "$version" ]] || die "installed templ reports '${got}', expected '${version}'"
log "installed templ ${version}"
echo "$bin"
