#!/usr/bin/env bash
# Installs headless Chromium and chromedriver from Debian's packages for the browser tests.
# Exits at once when /usr/bin/chromium and /usr/bin/chromedriver are already there.
# Needs root, or sudo without a password prompt.
set -euo pipefail

log() { printf 'install-chromium: %s\n' "$*" >&2; }
die() { printf 'install-chromium: ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    log "chromium and chromedriver already installed"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install chromium and chromedriver with your system's package manager"

if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    die "installing chromium needs root: run as root or with passwordless sudo (apt-get install chromium chromium-driver)"
fi

export DEBIAN_FRONTEND=noninteractive
packages=(chromium chromium-driver)

# Refresh the package lists only when the packages are unknown (lists never fetched).
if ! apt-cache show "${packages[@]}" >/dev/null 2>&1; then
    log "apt-get update"
    "${as_root[@]}" apt-get update -qq
fi

install() { "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; }
log "apt-get install ${packages[*]}"
if ! install; then
    # Stale package lists point at files the mirror no longer has: refresh once and retry.
    log "install failed; running apt-get update and retrying"
    "${as_root[@]}" apt-get update -qq
    install || die "apt-get install ${packages[*]} failed"
fi

[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] ||
    die "chromium packages installed but /usr/bin/chromium or /usr/bin/chromedriver is missing"
log "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
