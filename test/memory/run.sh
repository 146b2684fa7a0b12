#!/usr/bin/env bash
# Backend memory under a long session: ONE backend runs, after a warm-up,
#   phase 1: 10,000 failing pushes of each of 8 kinds (malformed JSON 22P02,
#            wrong shape 22023, a value that does not fit 22P02/22003, a
#            constraint 23505/23514, a conflict SY001, an unknown token SY003,
#            a missing GRANT or an untrusted user_id 42501, and a push to a
#            pull-only table: 42501 before 0921b80, rejected records since), each
#            caught in a plpgsql EXCEPTION block, committing every 500;
#   phase 2: 10,000 successful pushes, each followed by an incremental pull;
#   phase 3: 10,000 pushes, each with a distinct set of columns of a
#            16-column table (half create a row, half update it);
# and measures itself before and after each: RssAnon and VmRSS from
# /proc/self/status, and the sum of pg_backend_memory_contexts.
#
# Bounds (MAX_RSSANON_KB, MAX_CTX_KB below), chosen from measurements
# (PostgreSQL 15, 2 CPUs; figures repeat to within ~0.5 MB run to run):
# - RssAnon (private memory; shared buffers show up in RssShmem, binaries in
#   RssFile) from the session's start to its end <= 16 MB. A new backend has
#   3.3 MB; warm-up (catalog caches, pg_sync's and PL/pgSQL's plans) adds
#   6.5 MB; phases 1 and 2 add under 0.4 MB. A flat run therefore ends ~7 MB
#   above its start (measured: 6.5 MB with phase 3 creating rows only); the
#   bound is over twice that.
# - Memory-context total from the end of warm-up to the end <= 4 MB.
#   Measured per phase: -1.2 to +0.01 MB (cached plans come and go with
#   relcache invalidations). Warm-up already fills each table's LRU of write
#   plans (64 column sets > 32), so a flat run ends at about the warm-up
#   figure; 4 MB is room for noise, not for growth.
# What the bounds catch:
# - one kept plan pair per column set (pg_sync before e429216): phase 3 adds 602 MB of
#   contexts (18,820 CachedPlanSources) and 636 MB RssAnon;
# - every UPDATE with a new list of column types registers an anonymous
#   record type (the FROM ROWS FROM (...) AS v(...) whole-row Var that
#   UPDATE ... FROM keeps for EvalPlanQual), which PostgreSQL keeps for the
#   backend's life in CacheMemoryContext: ~1.5 kB per list, 5,000 update
#   column sets in phase 3 add 7.3 MB. Inserts do not.
# Usage: bash test/memory/run.sh   (uses pg_config/psql from PATH; a server
# with pg_sync installed; port PGSYNC_MEMORY_PORT, default 55498;
# PGSYNC_MEMORY_N operations per phase, default 10000, at most 16319).
# Exit status 0 when every check line says ok.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${PGSYNC_MEMORY_PORT:-55498}
n=${PGSYNC_MEMORY_N:-10000}
warm=200          # warm-up: operations of phases 1 and 2 (phase 3: 64 column sets)
batch=500         # failing pushes per transaction
MAX_RSSANON_KB=$((16 * 1024))
MAX_CTX_KB=$((4 * 1024))
if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 10 ] || [ "$n" -gt 16319 ]; then
  echo "PGSYNC_MEMORY_N must be 10..16319 (distinct column sets of 14 columns, past warm-up's 64)" >&2
  exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pg_sync_memory.XXXXXX")
chmod 755 "$tmp"    # the cluster's user (postgres, when run as root) enters it
cleanup() {
  bash "$root/test/cluster.sh" stop "$tmp/cluster" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
eval "$(bash "$root/test/cluster.sh" start "$tmp/cluster" "$port")"
export PGDATABASE=pg_sync_memory
psql -X -q -d postgres -c "CREATE DATABASE pg_sync_memory"
psql -X -q -v ON_ERROR_STOP=1 -f "$here/setup.sql" >/dev/null

echo "pg_sync memory test: $n operations per phase, one backend ($(pg_config --bindir)/postgres)"
echo "bounds: RssAnon growth start -> end <= $MAX_RSSANON_KB kB; memory-context growth warm-up -> end <= $MAX_CTX_KB kB"
start=$SECONDS
status=0
psql -X -q -v ON_ERROR_STOP=1 -v n="$n" -v warm="$warm" -v batch="$batch" \
  -f "$here/session.sql" >"$tmp/session.out" 2>&1 || status=$?
sed 's/^/  session: /' "$tmp/session.out"
echo "  session took $((SECONDS - start)) s"
report=$(psql -X -q -v n="$n" -v max_rssanon_kb="$MAX_RSSANON_KB" -v max_ctx_kb="$MAX_CTX_KB" \
  -f "$here/check.sql")
echo "$report" | sed 's/^/  /'
if [ "$status" != 0 ]; then
  echo "FAIL: the test session ended with an error (exit $status)"
  exit 1
fi
if echo "$report" | grep -q '^check .*: FAIL$'; then
  echo "FAIL: $(echo "$report" | grep -c '^check .*: FAIL$') check(s) failed"
  exit 1
fi
echo "PASS: backend memory stayed within the bounds"
