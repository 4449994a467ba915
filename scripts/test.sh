#!/usr/bin/env bash
# Runs every test of the project, in release mode (the end-to-end tests move files of up to 100 MiB
# through the real host, and one build serves the tests, the host and the components):
# - the workspace tests: the protocol core, the client, the Spin components' glue, static files and
#   HTTP file paths, the local edge host (its routing, key-value on SQLite and on a redis-server it
#   starts, its gateway);
# - the end-to-end tests of tests/: the components built for wasm32-wasip2 and run by the host that
#   each test starts on 127.0.0.1, on SQLite, on Redis and behind a real Pushpin, driven by the
#   command-line client's library;
# - the protocol core built for both WebAssembly targets it must run on (the edge, wasm32-wasip2; the
#   browser, wasm32-unknown-unknown);
# - a check that the fuzz targets (a crate outside the workspace) still compile against the core;
# - the browser tests: the web client built for the browser (scripts/build-web.sh), the local host
#   started on 127.0.0.1 by each test file, two users in headless Chromium (tests/browser/); their
#   screenshots go to target/browser-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

cargo test --workspace --all-targets --locked --release
cargo test --workspace --doc --locked --release
cargo build -p rcs-core --release --locked --target wasm32-wasip2
cargo build -p rcs-core --release --locked --target wasm32-unknown-unknown
cargo check --locked --manifest-path fuzz/Cargo.toml
./scripts/build-components.sh
./scripts/build-web.sh
npm test --prefix tests/browser
