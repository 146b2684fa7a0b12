#!/usr/bin/env bash
# Runs every test of pg_sync on a fresh Debian machine: installs what is
# missing, builds and installs the extension, starts a throwaway cluster on a
# private socket, runs the pg_regress suite and the isolation specs, stops
# the cluster; runs both again against a PostgreSQL 15 built with assertions
# (test/assert/run.sh: built once from Debian's source package, kept in
# /var/tmp). Also runs the convergence and push-race stress tests, the push fuzz test and
# the end-to-end suite (real WatermelonDB clients through the edge function,
# with clusters of their own), the backend memory test, the HTTP tests of
# the edge function, the browser test of the demo app, the scale tests (a
# hot standby, PgBouncer) and the make run shell tests. Exits non-zero on any failure and prints
# regression.diffs.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. "$root/test/ensure-deps.sh"
ensure_deps || exit 1
ensure_test_deps || exit 1

echo "== building"
make -s clean >/dev/null 2>&1
make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config 2>&1 | tee build.log
if grep -q "warning:" build.log; then echo "build has warnings"; exit 1; fi
rm -f build.log
$SUDO make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null || exit 1

dir=$(mktemp -d /tmp/pg_sync_test.XXXXXX)
port=${PGSYNC_TEST_PORT:-55432}
cleanup() { "$root/test/cluster.sh" stop "$dir"; rm -rf "$dir"; }
trap cleanup EXIT
eval "$("$root/test/cluster.sh" start "$dir" "$port")" || exit 1

echo "== pg_regress and isolation suites"
rm -rf results output_iso regression.diffs
make installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config 2>&1 | tee installcheck.log
status=${PIPESTATUS[0]}
for f in regression.diffs output_iso/regression.diffs; do
  [ -s "$f" ] && { echo "== $f"; cat "$f"; }
done

passed=0; failed=0
while read -r line; do
  if [[ $line =~ All\ ([0-9]+)\ tests\ passed ]]; then passed=$((passed + BASH_REMATCH[1]))
  elif [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
    failed=$((failed + BASH_REMATCH[1])); passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  fi
done < installcheck.log
rm -f installcheck.log
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1

echo "== the pg_regress suite and the isolation specs against an assert-enabled PostgreSQL 15 (built once from Debian's source package)"
bash test/assert/run.sh 2>&1 | tee assert.log
as_status=${PIPESTATUS[0]}
as_pass=$(sed -n 's/^assert build: \([0-9]*\) passed, [0-9]* failed$/\1/p' assert.log | tail -1)
as_fail=$(sed -n 's/^assert build: [0-9]* passed, \([0-9]*\) failed$/\1/p' assert.log | tail -1)
rm -f assert.log
passed=$((passed + ${as_pass:-0})); failed=$((failed + ${as_fail:-0}))
if [ "$as_status" -ne 0 ]; then status=1; [ "${as_fail:-0}" -eq 0 ] && failed=$((failed + 1)); fi

echo "== convergence stress (writers committing out of order, a long writer, 4 pulling clients)"
if DURATION=${STRESS_SECONDS:-15} bash test/stress/run.sh 2>&1 | grep -v NOTICE; then
  passed=$((passed + 1)); echo "stress ... ok"
else
  failed=$((failed + 1)); echo "stress ... FAILED"; status=1
fi
echo "== push races (abort and client_wins pushes on shared ids, SQL writers, sync_prune every 200 ms)"
if DURATION=${STRESS_SECONDS:-15} bash test/stress/push_race/run.sh 2>&1 | grep -v NOTICE; then
  passed=$((passed + 1)); echo "push races ... ok"
else
  failed=$((failed + 1)); echo "push races ... FAILED"; status=1
fi
echo "== crash safety (kill -9 mid-push, immediate shutdown under load; a cluster of its own)"
if bash test/crash/run.sh 2>&1 | grep -v NOTICE; then
  passed=$((passed + 1)); echo "crash safety ... ok"
else
  failed=$((failed + 1)); echo "crash safety ... FAILED"; status=1
fi
echo "== backend memory (one session: 80,000 failing pushes, 10,000 push+pull, 10,000 column sets)"
if bash test/memory/run.sh 2>&1 | grep -v NOTICE; then
  passed=$((passed + 1)); echo "memory ... ok"
else
  failed=$((failed + 1)); echo "memory ... FAILED"; status=1
fi
echo "== push fuzz (random and malformed documents: clean errors, no crash)"
if node test/fuzz/push-fuzz.mjs; then
  passed=$((passed + 1)); echo "fuzz ... ok"
else
  failed=$((failed + 1)); echo "fuzz ... FAILED"; status=1
fi

echo "== end-to-end: WatermelonDB clients through the edge function"
bash test/e2e/run.sh 2>&1 | tee e2e.log
e2e_status=${PIPESTATUS[0]}
e2e_pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' e2e.log | tail -1)
e2e_fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' e2e.log | tail -1)
rm -f e2e.log
passed=$((passed + ${e2e_pass:-0})); failed=$((failed + ${e2e_fail:-0}))
if [ "$e2e_status" -ne 0 ]; then
  status=1; [ "${e2e_fail:-0}" -eq 0 ] && failed=$((failed + 1))
fi

# suites that report like node's test runner ("# pass N" / "# fail N")
run_tap_suite() { # TITLE COMMAND...
  echo "== $1"; shift
  "$@" 2>&1 | tee suite.log
  local st=${PIPESTATUS[0]} p f
  p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' suite.log | tail -1)
  f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' suite.log | tail -1)
  rm -f suite.log
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [ "$st" -ne 0 ]; then status=1; [ "${f:-0}" -eq 0 ] && failed=$((failed + 1)); fi
  return 0
}
run_tap_suite "HTTP tests of the edge function" bash test/http/run.sh
run_tap_suite "browser test of the demo app (headless Chromium)" bash test/browser/run.sh
run_tap_suite "scale: a hot standby behind the edge function, PgBouncer (the end-to-end suite through it)" bash test/scale/run.sh

echo "== make run: shell tests (as a new user meets it)"
PGSYNC_SKIP_BUILD=1 bash test/make-run/run.sh 2>&1 | tee make-run.log
mr_status=${PIPESTATUS[0]}
mr_pass=$(sed -n 's/^make-run: \([0-9]*\) passed, [0-9]* failed$/\1/p' make-run.log | tail -1)
mr_fail=$(sed -n 's/^make-run: [0-9]* passed, \([0-9]*\) failed$/\1/p' make-run.log | tail -1)
rm -f make-run.log
passed=$((passed + ${mr_pass:-0})); failed=$((failed + ${mr_fail:-0}))
if [ "$mr_status" -ne 0 ]; then status=1; [ "${mr_fail:-0}" -eq 0 ] && failed=$((failed + 1)); fi

# a backend that died of a signal restarted the whole server: a failure,
# whatever the suites that ran on this cluster said
if grep -q "terminated by signal" "$dir/server.log"; then
  echo "== the server log shows a crash:"; grep -B2 -A2 "terminated by signal" "$dir/server.log"
  status=1; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
