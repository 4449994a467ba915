#!/usr/bin/env bash
# Starts the whole system on this machine: builds the Spin components, the browser client and the
# local edge host, then serves spin.toml on 127.0.0.1 with the key-value store in SQLite under .spin/
# and the built-in WebSocket gateway. Extra arguments go to `rcs-edge up` (for example `--listen 127.0.0.1:8080`, or
# `--runtime-config-file runtime-config.toml` to put the store on Redis).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 wasm32-unknown-unknown >/dev/null
./scripts/build-components.sh
./scripts/build-web.sh
exec "${CARGO_TARGET_DIR:-target}/release/rcs-edge" up --from spin.toml "$@"
