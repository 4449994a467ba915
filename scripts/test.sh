#!/usr/bin/env bash
# Runs every test of the project, in release mode (the end-to-end tests move files of up to 100 MiB
# through the real host, and one build serves the tests, the host and the components):
# - the workspace tests: the protocol core, the client, the Spin components' glue and the local edge
#   host (its tests build the echo component for wasm32-wasip2 and start the host on 127.0.0.1);
# - the end-to-end tests of tests/ (the host on SQLite, on Redis and behind Pushpin) are compiled and
#   checked by clippy but not run yet: run them with `cargo test --release -p rcs-e2e`;
# - the protocol core built for both WebAssembly targets it must run on (the edge, wasm32-wasip2; the
#   browser, wasm32-unknown-unknown);
# - a check that the fuzz targets (a crate outside the workspace) still compile against the core.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

cargo test --workspace --all-targets --locked --release --exclude rcs-e2e
cargo test -p rcs-e2e --locked --release --no-run
cargo test --workspace --doc --locked --release
cargo build -p rcs-core --release --locked --target wasm32-wasip2
cargo build -p rcs-core --release --locked --target wasm32-unknown-unknown
cargo check --locked --manifest-path fuzz/Cargo.toml
