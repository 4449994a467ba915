#!/usr/bin/env bash
# Builds the browser client (web-client/, wasm32-unknown-unknown, release) and writes its
# wasm-bindgen output to www/pkg/, where the page (www/app.js) loads it. www/pkg/ is generated and
# ignored by git. Needs the wasm-bindgen CLI of the same version as the wasm-bindgen crate
# (scripts/install-test-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --release -p rcs-web-client --target wasm32-unknown-unknown
target_dir="${CARGO_TARGET_DIR:-target}"
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    "$target_dir/wasm32-unknown-unknown/release/rcs_web_client.wasm"
