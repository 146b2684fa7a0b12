#!/usr/bin/env bash
# Cost of realtime hints on writers: pgbench, WRITERS clients (default 16)
# doing single-row UPDATEs of a registered per-user table, with and without
# a poller calling sync_changed_users() for USERS users (default 1,000)
# every POLL_MS (default 500 ms), as the edge function's /sync/events does.
# Rounds alternate (ROUNDS, default 3, of SECS seconds, default 20); prints
# TPS per round, the ratio with/without, and the poll's own latency.
# Usage: test/bench/hints.sh   (pg_config/psql/pgbench from PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
writers=${WRITERS:-16}; users=${USERS:-1000}; poll_ms=${POLL_MS:-500}
rounds=${ROUNDS:-3}; secs=${SECS:-20}
port=${PGSYNC_BENCH_PORT:-55496}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pg_sync_hints.XXXXXX")
chmod 755 "$tmp"
poller=""
cleanup() {
  [ -n "$poller" ] && kill "$poller" 2>/dev/null || true
  bash "$root/test/cluster.sh" stop "$tmp/cluster" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
eval "$(bash "$root/test/cluster.sh" start "$tmp/cluster" "$port")"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE EXTENSION pg_sync;
CREATE TABLE notes (id text PRIMARY KEY, owner text, body text, n int);
INSERT INTO notes SELECT 'n' || g, 'user' || (g % $users), 'body', 0 FROM generate_series(1, 100000) g;
CREATE INDEX ON notes (owner);
SELECT sync_register_table('notes', 'owner');
VACUUM ANALYZE;
SQL
cat >"$tmp/update.sql" <<'SQL'
\set k random(1, 100000)
UPDATE notes SET n = n + 1 WHERE id = 'n' || :k;
SQL
# the poller: one call per POLL_MS for all users, timing each call
cat >"$tmp/poll.sql" <<SQL
SELECT sync_changed_users(NULL, NULL) ->> 'next' AS pos \\gset
\\timing on
SQL
for _ in $(seq 1 $(( (secs + 5) * 1000 / poll_ms ))); do
  cat >>"$tmp/poll.sql" <<SQL
SELECT sync_changed_users(:'pos', (SELECT array_agg('user' || g) FROM generate_series(0, $((users - 1))) g)) ->> 'next' AS pos \\gset
SELECT pg_sleep($poll_ms / 1000.0);
SQL
done
run() { pgbench -n -M prepared -c "$writers" -j 2 -T "$secs" -f "$tmp/update.sql" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
sum_off=0; sum_on=0
for r in $(seq 1 "$rounds"); do
  off=$(run)
  psql -X -q -f "$tmp/poll.sql" >"$tmp/poll.$r.log" 2>&1 & poller=$!
  on=$(run)
  kill "$poller" 2>/dev/null || true; wait "$poller" 2>/dev/null || true; poller=""
  echo "round $r: without hints $off TPS, with the poller $on TPS"
  sum_off=$(awk -v a="$sum_off" -v b="$off" 'BEGIN {print a + b}')
  sum_on=$(awk -v a="$sum_on" -v b="$on" 'BEGIN {print a + b}')
done
awk -v a="$sum_on" -v b="$sum_off" -v w="$writers" -v u="$users" -v p="$poll_ms" \
  'BEGIN {printf "writers with the poller / without: %.3fx (%d writers, %d users polled every %d ms)\n", a/b, w, u, p}'
# the poll's own latency (the pg_sleep lines, near POLL_MS, are left out)
grep -h 'Time:' "$tmp"/poll.*.log | awk '{print $2}' | sort -n > "$tmp/all" || true
n=$(grep -c . "$tmp/all" || true)
if [ "${n:-0}" -gt 0 ]; then
  # pg_sleep lines take ~POLL_MS: keep the calls (well under it)
  awk -v lim="$poll_ms" '$1 < lim * 0.8' "$tmp/all" | sort -n > "$tmp/calls"
  c=$(grep -c . "$tmp/calls" || true)
  p50=$(awk -v n="$c" 'NR == int(n * 0.5) + 1' "$tmp/calls"); p99=$(awk -v n="$c" 'NR == int(n * 0.99) + 1' "$tmp/calls")
  echo "sync_changed_users for $users users: p50 ${p50} ms, p99 ${p99} ms over $c calls"
fi
