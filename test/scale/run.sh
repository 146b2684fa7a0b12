#!/usr/bin/env bash
# Scale tests (node's test runner; the end-to-end suite's harness, WatermelonDB and Deno from
# test/e2e/node_modules):
#   1. test/scale/tests: pg_sync behind a streaming hot standby (each file starts its own primary
#      through the harness, a standby with topology.sh add-standby, and the edge function with
#      DATABASE_REPLICA_URL), and the function through PgBouncer in transaction pooling mode;
#   2. the whole end-to-end suite (test/e2e/tests) with the function behind PgBouncer
#      (PGSYNC_E2E_POOLER=pgbouncer, transaction pooling, 2 server connections).
# Assumes pg_sync is built and installed for the pg_config on PATH, and Debian's pgbouncer.
# Ports: the primary from PGSYNC_SCALE_PORT (56120), the standby from PGSYNC_SCALE_STANDBY_PORT
# (56180). Ends with "# pass N" / "# fail N" over both parts; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")"
e2e=../e2e
if [ ! -x $e2e/node_modules/.bin/deno ] || [ ! -d $e2e/node_modules/@nozbe/watermelondb ] || [ ! -d $e2e/node_modules/jose ]; then
  echo "== installing the end-to-end suite's npm dependencies"
  (cd $e2e && npm install --no-audit --no-fund) || exit 1
fi
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { echo "pgbouncer is required (apt-get install pgbouncer)" >&2; exit 1; }
export PGSYNC_E2E_PORT=${PGSYNC_SCALE_PORT:-56120}
pass=0 fail=0 status=0
out=$(mktemp /tmp/pg_sync_scale_run.XXXXXX)
trap 'rm -f "$out"' EXIT
part() { # TITLE, then the command
  echo "== $1"; shift
  "$@" 2>&1 | tee "$out"
  local st=${PIPESTATUS[0]} p f
  p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)
  f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
  if [ "$st" -ne 0 ]; then status=1; [ "${f:-0}" -eq 0 ] && fail=$((fail + 1)); fi
}
part "scale tests: a primary and a hot standby; PgBouncer" node --test --test-concurrency=1 tests/*.test.js
part "end-to-end suite through PgBouncer (transaction pooling)" \
  env PGSYNC_E2E_POOLER=pgbouncer node --test --test-concurrency=1 $e2e/tests/*.test.js
echo "# pass $pass"
echo "# fail $fail"
[ "$status" -eq 0 ] && [ "$fail" -eq 0 ]
