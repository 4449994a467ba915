#!/usr/bin/env bash
# Builds the Spin components (`cargo build --target wasm32-wasip2 --release`, as each component's
# `[component.<id>.build]` in spin.toml says) and the local edge host. When CARGO_TARGET_DIR points
# outside the repository, the component files are copied to target/wasm32-wasip2/release/, where
# spin.toml's `source` paths expect them.
set -euo pipefail
cd "$(dirname "$0")/.."

components=(sender-as receiver-as static-files echo)
cargo build --locked --release --target wasm32-wasip2 "${components[@]/#/-p}"
cargo build --locked --release -p rcs-edge-host -p rcs-client

target_dir="${CARGO_TARGET_DIR:-target}"
if [ "$(realpath -m "$target_dir")" != "$(realpath -m target)" ]; then
    mkdir -p target/wasm32-wasip2/release
    for wasm in sender_as receiver_as static_files echo; do
        cp -f "$target_dir/wasm32-wasip2/release/$wasm.wasm" target/wasm32-wasip2/release/
    done
fi
