#!/usr/bin/env bash
# End-to-end tests of pg_sync: a real WatermelonDB client (Node) syncing through the edge function
# (examples/supabase/functions/sync, run by Deno) with PostgreSQL 15 + pg_sync.
#
# Assumes pg_sync is built and installed (make && make install) into the PostgreSQL 15 that
# test/pg15-bin.sh finds (PG_CONFIG, else the pg_config on PATH when it is 15's, else Debian's).
# Installs the npm dependencies if they are missing, then runs the suite; each test file starts
# and stops its own throwaway cluster (first free port from 54360, override with PGSYNC_E2E_PORT)
# and its own edge function. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
. ../pg15-bin.sh

command -v node >/dev/null || { echo "node (>= 20) is required" >&2; exit 1; }
if [ ! -x node_modules/.bin/deno ] || [ ! -d node_modules/@nozbe/watermelondb ] || [ ! -d node_modules/jose ]; then
  echo "== installing npm dependencies"
  # npm install (not npm ci): it installs the versions package-lock.json pins, and accepts a lock file
  # that lists only this platform's optional packages (deno's per-platform binaries).
  npm install --no-audit --no-fund
fi
echo "== end-to-end suite"
npm test
