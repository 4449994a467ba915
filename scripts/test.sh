#!/usr/bin/env bash
# Runs every test of the project: the workspace tests on the host, then the protocol core built for
# both WebAssembly targets it must run on (the edge, wasm32-wasip2; the browser, wasm32-unknown-unknown).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
cargo build -p rcs-core --release --locked --target wasm32-wasip2
cargo build -p rcs-core --release --locked --target wasm32-unknown-unknown
