#!/usr/bin/env bash
# The browser suite, one test file after another. A file that fails is run once more: on a 2-core
# machine the timing bounds of a few tests (a second to unmute, a policed downlink settling) are
# sometimes missed while the other core compiles or decodes. A file that passes only the second
# time is named FLAKY in the summary, so it stays visible; one that fails twice fails the suite.
# Why this is allowed at all is in docs/decisions.md ("Browser tests get one retry").
#
#   bash tests/e2e/run.sh [FILE...]      (default: every tests/e2e/*.test.js)
set -uo pipefail
cd "$(dirname "$0")/../.."

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(tests/e2e/*.test.js)

flaky=()
failed=()
for file in "${files[@]}"; do
  if node --test --test-concurrency=1 "$file"; then continue; fi
  echo "== tests/e2e/run.sh: $file failed; running it once more"
  if node --test --test-concurrency=1 "$file"; then
    flaky+=("$file")
  else
    failed+=("$file")
  fi
done

echo "== tests/e2e/run.sh: ${#files[@]} files, ${#flaky[@]} FLAKY (passed the second time), ${#failed[@]} failed"
for f in "${flaky[@]}"; do echo "FLAKY: $f"; done
for f in "${failed[@]}"; do echo "FAILED: $f"; done
[ ${#failed[@]} -eq 0 ]
