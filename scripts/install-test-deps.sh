#!/usr/bin/env bash
# Installs what the tests need beyond Rust, when it is missing: the wasm targets (named in
# rust-toolchain.toml), Debian's redis-server (the network shared store), pushpin (a real GRIP
# gateway) and chromium (the browser tests, driven by npm playwright-core from tests/browser/), and,
# when SPIN_BIN names a Spin to test on, what a packed Spin binary needs to unpack and run (xz,
# libssl3). The tests start their own instances on 127.0.0.1; the system services are not used.
set -euo pipefail

rustup target add wasm32-wasip2 wasm32-unknown-unknown >/dev/null

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v pushpin >/dev/null || missing+=(pushpin)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ -n "${SPIN_BIN:-}" ]; then
    command -v xz >/dev/null || missing+=(xz-utils)
    [ -e /usr/lib/x86_64-linux-gnu/libssl.so.3 ] || ldconfig -p | grep -q 'libssl\.so\.3' || missing+=(libssl3)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
