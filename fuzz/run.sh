#!/usr/bin/env bash
# Bounded fuzzing of every cargo-fuzz target on the stable toolchain: each target runs for SECONDS
# (default 30) starting from its checked-in seed corpus in corpus/<target>/. New inputs go to a
# scratch directory, so the seed corpus stays as committed. A crash or a hang leaves its input in
# fuzz/artifacts/<target>/ and fails this script.
#
#   bash fuzz/run.sh [SECONDS]
#
# Stable needs two things: `--sanitizer none` (AddressSanitizer needs the nightly-only
# -Zsanitizer; the targets are safe Rust, so panics, hangs and out-of-memory are what we look for)
# and nothing else: libFuzzer's coverage instrumentation uses stable codegen flags.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

build=(-O --sanitizer none)
cargo fuzz build "${build[@]}"

# The SDP target makes the server send ICE checks to the candidates it is given. The target
# itself rewrites every non-loopback address to loopback; as a second guard, run in a network
# namespace that has nothing but `lo`, where no packet can leave the machine.
isolate=()
if command -v ip >/dev/null 2>&1 && unshare --net true 2>/dev/null; then
  isolate=(unshare --net sh -c 'ip link set lo up && exec "$@"' isolated)
else
  echo "fuzz/run.sh: no network namespace available; relying on the target's loopback rewrite" >&2
fi

for target in $(cargo fuzz list); do
  scratch="$(mktemp -d)"
  echo "== fuzzing $target for ${seconds}s"
  CARGO_NET_OFFLINE=true "${isolate[@]}" cargo fuzz run "${build[@]}" "$target" \
    "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1
  rm -rf "$scratch"
done
