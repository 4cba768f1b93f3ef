#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the browser end-to-end tests
# against the real binary in headless Chromium. Installs missing test tools first.
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
  local started=$SECONDS
  "$@"
  echo "== tests/run.sh: $1 $2 took $((SECONDS - started)) s"
}

step bash tests/install-deps.sh
# Every binary and test in one build, with one set of features: `cargo run -p` alone would
# resolve features for one package, and `--bins` alone without the dev-dependencies' (criterion
# turns on features of serde and zerocopy), so `cargo test` would then rebuild webrtc-rs and
# everything under it a second time (minutes, and on CI disk).
step cargo build --locked --workspace --bins --tests
step cargo test --locked --workspace
# The fan-out benchmark's smoke run (1 and 5 subscribers, 5 s each): fails if nothing is delivered.
step target/debug/roomcast-bench quick --out target/bench-quick
step bash tests/e2e/run.sh
