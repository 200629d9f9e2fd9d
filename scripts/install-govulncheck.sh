#!/usr/bin/env bash
# Installs govulncheck (golang.org/x/vuln) into ./bin at the pinned version below, through the Go
# module proxy. Skips when ./bin/govulncheck already is that version. The last line printed is
# the binary's path. To upgrade, change VERSION (see `go list -m -versions golang.org/x/vuln`).
set -euo pipefail

VERSION="v1.9.0"

cd "$(dirname "$0")/.."
root="$(pwd)"
bin="${root}/bin/govulncheck"

log() { printf 'install-govulncheck: %s\n' "$*" >&2; }
die() { printf 'install-govulncheck: ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "'go' is required but not found in PATH"

# the module version built into the binary (read offline: govulncheck -version may reach out)
installed() { go version -m "$bin" 2>/dev/null | awk '$1 == "mod" && $2 == "golang.org/x/vuln" { print $3 }'; }

if [[ -x "$bin" ]] && [[ "$(installed)" == "$VERSION" ]]; then
    log "govulncheck ${VERSION} already installed"
    echo "$bin"
    exit 0
fi

log "installing govulncheck ${VERSION} into ./bin"
mkdir -p "${root}/bin"
GOBIN="${root}/bin" go install "golang.org/x/vuln/cmd/govulncheck@${VERSION}"

got="$(installed)"
[[ "$got" == "$VERSION" ]] || die "installed govulncheck reports '${got}', expected '${VERSION}'"
log "installed govulncheck ${VERSION}"
echo "$bin"
