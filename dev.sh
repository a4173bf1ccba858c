#!/usr/bin/env bash
# The README's two commands:
#   ./dev.sh demo   set up whatever is missing, then run the demo
#   ./dev.sh test   set up whatever is missing, then run every test (what CI runs)
# Other commands are passed to `cargo xtask` (setup, bench, vectors).
set -euo pipefail
cd "$(dirname "$0")"

# Debian/Ubuntu packages the build and the tests need.
PACKAGES=(build-essential pkg-config python3 python3-venv util-linux curl ca-certificates dnsmasq-base dbus gnome-keyring libtss2-dev swtpm swtpm-tools systemd iproute2
    # The tray app (Tauri 2 on WebKitGTK) and its tests: a virtual display, the WebDriver
    # for the real window, Chromium for the UI's browser tests.
    libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
    xvfb xauth webkit2gtk-driver chromium at-spi2-core
    # lapd's PostgreSQL backend: its tests start a private server from these programs.
    postgresql
    # Windows from Linux: mingw links the x86_64-pc-windows-gnu binaries (and the Wine
    # ProcessPrng shim), Wine runs their tests, makensis builds the installer.
    gcc-mingw-w64-x86-64 wine wine64 nsis)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    command -v dpkg-query >/dev/null || { echo "dev.sh: not a Debian/Ubuntu system; install: ${PACKAGES[*]}" >&2; return 0; }
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # A python3 outside Debian's (pyenv, say) has venv built in; Debian's needs python3-venv.
    if python3 -c 'import venv, ensurepip' 2>/dev/null; then
        missing=("${missing[@]/python3-venv/}")
    fi
    missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
    if [ ${#missing[@]} -gt 0 ]; then
        echo "dev.sh: installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

install_node() {
    command -v npm >/dev/null && return 0
    echo "dev.sh: installing Node.js and npm (the UI's build and tests)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
}

install_rust() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    if command -v cargo >/dev/null; then return 0; fi
    echo "dev.sh: no Rust toolchain; installing rustup and the stable toolchain"
    if apt-cache show rustup >/dev/null 2>&1; then
        as_root apt-get install -y -qq rustup
        rustup default stable
    else
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
        . "$HOME/.cargo/env"
    fi
}

install_packages
install_node
install_rust
cmd="${1:-demo}"
shift || true
# A full test run builds everything once: incremental caches would only add gigabytes of disk
# (CI machines have little to spare) without saving time.
if [ "$cmd" = test ]; then export CARGO_INCREMENTAL=0; fi
exec cargo xtask "$cmd" "$@"
