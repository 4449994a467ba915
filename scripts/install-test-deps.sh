#!/usr/bin/env bash
# Installs what the tests need beyond Rust, when it is missing: the wasm targets (named in
# rust-toolchain.toml) and Debian's redis-server (the network shared store) and pushpin (a real GRIP
# gateway). The tests start their own instances on 127.0.0.1; the system services are not used.
set -euo pipefail

rustup target add wasm32-wasip2 wasm32-unknown-unknown >/dev/null

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v pushpin >/dev/null || missing+=(pushpin)
if [ "${#missing[@]}" -gt 0 ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
