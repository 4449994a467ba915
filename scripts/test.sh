#!/usr/bin/env bash
# Runs every test of the project, in release mode (the end-to-end tests move files of up to 100 MiB
# through the real host, and one build serves the tests, the host and the components):
# - the workspace tests: the protocol core, the client, the Spin components' glue, static files and
#   HTTP file paths;
# - the local edge host's tests and the end-to-end tests of tests/ (the host on SQLite, on Redis and
#   behind Pushpin) are built but not run by this script yet: `cargo test --release -p rcs-edge-host`
#   and `cargo test --release -p rcs-e2e` run them;
# - the protocol core built for both WebAssembly targets it must run on (the edge, wasm32-wasip2; the
#   browser, wasm32-unknown-unknown);
# - a check that the fuzz targets (a crate outside the workspace) still compile against the core.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

cargo test --workspace --all-targets --locked --release --exclude rcs-e2e --exclude rcs-edge-host
cargo test -p rcs-edge-host -p rcs-e2e --all-targets --locked --release --no-run
cargo test --workspace --doc --locked --release
cargo build -p rcs-core --release --locked --target wasm32-wasip2
cargo build -p rcs-core --release --locked --target wasm32-unknown-unknown
cargo check --locked --manifest-path fuzz/Cargo.toml
