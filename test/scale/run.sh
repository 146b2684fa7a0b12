#!/usr/bin/env bash
# Scale tests: pg_sync behind a streaming hot standby (test/scale/tests, node's test runner, the
# end-to-end suite's harness, WatermelonDB and Deno from test/e2e/node_modules). Each file starts
# its own primary (through the harness), standby (topology.sh add-standby) and edge function.
# Assumes pg_sync is built and installed for the pg_config on PATH. Ports: the primary from
# PGSYNC_SCALE_PORT (56140), the standby from PGSYNC_SCALE_STANDBY_PORT (56180).
set -euo pipefail
cd "$(dirname "$0")"
e2e=../e2e
if [ ! -x $e2e/node_modules/.bin/deno ] || [ ! -d $e2e/node_modules/@nozbe/watermelondb ] || [ ! -d $e2e/node_modules/jose ]; then
  echo "== installing the end-to-end suite's npm dependencies"
  (cd $e2e && npm install --no-audit --no-fund)
fi
export PGSYNC_E2E_PORT=${PGSYNC_SCALE_PORT:-56140}
echo "== scale tests: a primary and a hot standby"
node --test --test-concurrency=1 tests/*.test.js
