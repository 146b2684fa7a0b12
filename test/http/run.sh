#!/usr/bin/env bash
# HTTP tests of the edge function (examples/supabase/functions/sync): body limit, CORS, error
# answers, tokens, service_role, pull-only tables and row-level security of make run's schema.
# Each file starts its own clusters and functions through the end-to-end harness (test/e2e/lib),
# whose npm dependencies (Deno, jose, WatermelonDB) this installs when missing.
# Assumes pg_sync is installed. Ends with node's "# pass N" / "# fail N"; non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/pg15-bin.sh
e2e=test/e2e
if [ ! -x $e2e/node_modules/.bin/deno ] || [ ! -d $e2e/node_modules/@nozbe/watermelondb ] || [ ! -d $e2e/node_modules/jose ]; then
  echo "== installing npm dependencies (test/e2e)"
  (cd $e2e && npm install --no-audit --no-fund)
fi
echo "== HTTP tests of the edge function"
node --test --test-concurrency=1 --test-timeout=300000 test/http/*.test.js
