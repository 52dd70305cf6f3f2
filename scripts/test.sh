#!/usr/bin/env bash
# `make test`: ruff and mypy, pytest (unit tests, lab conformance, end-to-end), behave --dry-run.
#
# The lab and end-to-end tests (tests/lab, tests/integration) take most of the time and spend it waiting on the
# lab (failovers, heartbeats, scrapes), with the CPU mostly idle. So the CPU-bound parts (lint, the unit tests,
# behave --dry-run) run beside them, in a second process, and the whole takes about as long as the lab tests
# alone. The two share nothing: the other tests (unit, browser) need no lab and keep their leases, sockets and
# files in their own temporary folders. The lab part's output is shown as it goes, the other part's whole when both
# have ended; the target fails if either failed. The CPU-bound part runs niced: the lab part sets the pace (its
# services, traffic and timing measurements want the CPU when they need it), the other has minutes to spare.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

fast() {
    "$BIN/ruff" check . || return 1
    "$BIN/mypy" support lab steps environment.py || return 1
    "$BIN/pytest" -q -rs --durations=10 --basetemp="$out/unit-tmp" -p no:cacheprovider \
        --ignore=tests/lab --ignore=tests/integration tests || return 1
    "$BIN/behave" --dry-run --format progress
}

renice_self() { renice -n 10 -p "$BASHPID" >/dev/null 2>&1 || true; }
(renice_self; fast) >"$out/fast.log" 2>&1 &
fast_pid=$!
start=$SECONDS
"$BIN/pytest" -q -rs --durations=15 tests/integration tests/lab  # tests/lab/test_lab_zz_down.py: the lab down, last
slow_rc=$?
slow_s=$((SECONDS - start))
wait "$fast_pid"
fast_rc=$?
echo
echo "=== ruff, mypy, unit tests, behave --dry-run (run beside the lab tests) ==="
cat "$out/fast.log"
echo
echo "make test: lab and end-to-end tests exit $slow_rc (${slow_s} s); lint, unit tests and dry run exit $fast_rc"
[ "$slow_rc" -eq 0 ] && [ "$fast_rc" -eq 0 ]
