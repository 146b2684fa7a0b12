#!/usr/bin/env bash
# Runs every test of pg_sync on a fresh Debian machine: installs what is
# missing, builds and installs the extension, starts a throwaway cluster on a
# private socket, runs the pg_regress suite and the isolation specs, stops
# the cluster; runs both again against a PostgreSQL 15 built with assertions
# (test/assert/run.sh: built once from Debian's source package, kept in
# /var/tmp) and on PostgreSQL 17 and 18 (test/versions/run.sh: Debian's
# packages of them in Debian roots of trixie and sid, kept in /var/tmp).
# Also runs the convergence and push-race stress tests, the failover test
# (checkpoint ids on a promoted standby), the push fuzz test
# and the end-to-end suite (real WatermelonDB clients through the edge
# function, with clusters of their own), the backend memory test, the HTTP
# tests of the edge function, the browser test of the demo app, the scale
# tests (a hot standby, PgBouncer) and the make run shell tests. Exits
# non-zero on any failure and prints regression.diffs.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. "$root/test/ensure-deps.sh"
. "$root/test/suite-lib.sh"
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
passed=0; failed=0; status=0
installcheck_counted "$root" /usr/lib/postgresql/15/bin/pg_config || status=1

run_suite "the pg_regress suite and the isolation specs against an assert-enabled PostgreSQL 15 (built once from Debian's source package)" \
  "assert build" bash test/assert/run.sh
run_suite "the suites, the stress, crash and failover tests on PostgreSQL 17 and 18 (Debian's packages, in Debian roots made with debootstrap)" \
  "other versions" $SUDO bash test/versions/run.sh

run_check "convergence stress (writers committing out of order, a long writer, 4 pulling clients, VACUUM (ANALYZE) of the change records)" \
  stress env DURATION="${STRESS_SECONDS:-15}" bash test/stress/run.sh
run_check "push races (abort and client_wins pushes on shared ids, half of the clients naming their device, SQL writers, sync_prune every 200 ms)" \
  "push races" env DURATION="${STRESS_SECONDS:-15}" bash test/stress/push_race/run.sh
run_suite "failover: checkpoint ids on a promoted standby (a primary and a streaming standby of their own)" \
  "failover" bash test/failover/run.sh
run_check "crash safety (kill -9 mid-push, immediate shutdown under load; a cluster of its own)" \
  "crash safety" bash test/crash/run.sh
run_check "backend memory (one session: 80,000 failing pushes, 10,000 push+pull, 10,000 column sets)" \
  memory bash test/memory/run.sh
run_check "push fuzz (random and malformed documents: clean errors, no crash)" \
  fuzz node test/fuzz/push-fuzz.mjs

run_suite "end-to-end: WatermelonDB clients through the edge function" tap bash test/e2e/run.sh
run_suite "HTTP tests of the edge function" tap bash test/http/run.sh
run_suite "browser test of the demo app (headless Chromium)" tap bash test/browser/run.sh
run_suite "scale: a hot standby behind the edge function, PgBouncer (the end-to-end suite through it)" tap bash test/scale/run.sh
run_suite "make run: shell tests (as a new user meets it)" make-run env PGSYNC_SKIP_BUILD=1 bash test/make-run/run.sh

# a backend that died of a signal restarted the whole server: a failure,
# whatever the suites that ran on this cluster said
server_log_failure "the server log shows a crash" "$dir/server.log" "terminated by signal"

print_failures
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
