#!/usr/bin/env bash
# Builds the browser client (web-client/, wasm32-unknown-unknown, release) and writes its
# wasm-bindgen output to www/pkg/, where the page (www/app.js) loads it. www/pkg/ is generated and
# ignored by git. The wasm-bindgen CLI must be the wasm-bindgen crate's version exactly
# (web-client/Cargo.toml pins it); it is installed with cargo when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

wasm_bindgen_version=0.2.130
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen_version" ]; then
    cargo install --quiet wasm-bindgen-cli --version "$wasm_bindgen_version"
fi

cargo build --locked --release -p rcs-web-client --target wasm32-unknown-unknown
target_dir="${CARGO_TARGET_DIR:-target}"
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    "$target_dir/wasm32-unknown-unknown/release/rcs_web_client.wasm"
