#!/usr/bin/env bash
# Flake hunt (README, "Tests"): runs the whole suite (`npm test`) RUNS times in a row while HOGS busy loops
# keep that many cores loaded, and reports every test that failed even once. A test that fails here has a
# race in the product or a fixed wait in the test: fix the cause, never a longer timeout or a retry.
#
#   scripts/flake-hunt.sh [RUNS=10] [HOGS=1]
#
# Logs of every run go to a fresh directory under ${TMPDIR:-/tmp}; exits 1 when any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
hogs=${2:-1}
logs=$(mktemp -d "${TMPDIR:-/tmp}/msc-flake-hunt.XXXXXX")

pids=()
stop_hogs() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap stop_hogs EXIT
for _ in $(seq 1 "$hogs"); do
  node -e 'for (;;) {}' &
  pids+=($!)
done

echo "flake hunt: $runs runs of npm test beside $hogs busy core(s); logs in $logs"
failed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if npm test >"$logs/run-$i.log" 2>&1; then
    echo "run $i: passed in $(( $(date +%s) - start )) s"
  else
    failed=$((failed + 1))
    echo "run $i: FAILED in $(( $(date +%s) - start )) s ($logs/run-$i.log)"
    # vitest's failure list: lines naming a failed test file and test.
    sed 's/\x1b\[[0-9;]*m//g' "$logs/run-$i.log" | grep -E '^ *(FAIL|×) ' | sort -u | sed 's/^/  /'
  fi
done
echo "flake hunt: $((runs - failed)) of $runs runs passed"
[ "$failed" -eq 0 ]
