#!/usr/bin/env bash
# Installs chDB's libchdb.so (the embedded ClickHouse engine) into the converge cache:
#   ${CONVERGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/converge}/chdb/<version>/libchdb.so
# The npm tarball is verified against a pinned SHA-256 before anything is extracted.
# Idempotent: a stamp file next to the library records the verified checksum; when it matches,
# the script exits at once. The last line printed is always the library's absolute path.
set -euo pipefail

CHDB_VERSION="26.5.3"
CHDB_PACKAGE="@chdb/lib-linux-x64-gnu"
CHDB_SHA256="b874e449710950da3abd7e20376f7bb3387d9e03adcc7082f022be18dfdf316a"

cache_root="${CONVERGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/converge}"
target_dir="${cache_root}/chdb/${CHDB_VERSION}"
lib="${target_dir}/libchdb.so"
stamp="${lib}.sha256"

log() { printf 'install-chdb: %s\n' "$*" >&2; }
die() { printf 'install-chdb: ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -s "$lib" && -f "$stamp" && "$(cat "$stamp")" == "$CHDB_SHA256" ]]; then
    log "chDB ${CHDB_VERSION} already installed"
    echo "$lib"
    exit 0
fi

for tool in npm tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not found in PATH (npm: apt-get install npm)"
done

mkdir -p "$target_dir"
work="$(mktemp -d "${TMPDIR:-/tmp}/converge-chdb.XXXXXX")"
partial=""
cleanup() {
    rm -rf "$work"
    if [[ -n "$partial" ]]; then rm -f "$partial"; fi
}
trap cleanup EXIT

log "downloading ${CHDB_PACKAGE}@${CHDB_VERSION} (about 166 MB) with npm pack"
if ! (cd "$work" && npm pack --silent "${CHDB_PACKAGE}@${CHDB_VERSION}" >pack.out 2>pack.err); then
    cat "$work/pack.err" >&2 || true
    die "npm pack ${CHDB_PACKAGE}@${CHDB_VERSION} failed"
fi
tarball="$(find "$work" -maxdepth 1 -name '*.tgz' -print -quit)"
[[ -n "$tarball" ]] || die "npm pack produced no tarball in $work"

actual="$(sha256sum "$tarball" | cut -d' ' -f1)"
if [[ "$actual" != "$CHDB_SHA256" ]]; then
    die "checksum mismatch for $(basename "$tarball"): expected ${CHDB_SHA256}, got ${actual}; refusing to install"
fi
log "checksum verified (sha256 ${CHDB_SHA256})"

log "extracting package/libchdb.so (about 559 MB)"
# Atomic install: extract to a temporary name in the target directory, then rename into place.
partial="$(mktemp "${target_dir}/.libchdb.so.XXXXXX")"
tar -xzOf "$tarball" package/libchdb.so >"$partial" || die "could not extract package/libchdb.so from $(basename "$tarball")"
[[ -s "$partial" ]] || die "extracted libchdb.so is empty"
chmod 0644 "$partial"
mv -f "$partial" "$lib"
partial=""

stamp_tmp="$(mktemp "${target_dir}/.stamp.XXXXXX")"
echo "$CHDB_SHA256" >"$stamp_tmp"
chmod 0644 "$stamp_tmp"
mv -f "$stamp_tmp" "$stamp"

log "installed chDB ${CHDB_VERSION}"
echo "$lib"
