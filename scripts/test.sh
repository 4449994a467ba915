#!/usr/bin/env bash
# Runs every test of the project: the workspace tests on the host, the protocol core built for both
# WebAssembly targets it must run on (the edge, wasm32-wasip2; the browser, wasm32-unknown-unknown),
# and a check that the fuzz targets (a crate outside the workspace) still compile against the core.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
cargo build -p rcs-core --release --locked --target wasm32-wasip2
cargo build -p rcs-core --release --locked --target wasm32-unknown-unknown
cargo check --locked --manifest-path fuzz/Cargo.toml
