#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the browser end-to-end tests
# against the real binary in headless Chromium. Installs missing test tools first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install-deps.sh
cargo build --locked --bin roomcast
cargo test --locked --workspace
# The fan-out benchmark's smoke run (1 and 5 subscribers, 5 s each): fails if nothing is delivered.
cargo run --locked -p roomcast-bench -- quick --out target/bench-quick
node --test --test-concurrency=1 tests/e2e/
