#!/usr/bin/env bash
# Backend memory of a first pull of ROWS rows (default 1,000,000): one pull
# unpaged, then the same pull in pages of PAGE (default 5000), each in a
# fresh backend. Prints the peak private memory (RssAnon, sampled every
# 5 ms from /proc while the calls run) and the time, and their ratios.
# Usage: test/bench/pull_memory.sh   (pg_config/psql from PATH; needs root
# or the cluster's user to read /proc/<backend>/status)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rows=${ROWS:-1000000}
page=${PAGE:-5000}
port=${PGSYNC_BENCH_PORT:-55497}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pg_sync_pullmem.XXXXXX")
chmod 755 "$tmp"
cleanup() { bash "$root/test/cluster.sh" stop "$tmp/cluster" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
eval "$(bash "$root/test/cluster.sh" start "$tmp/cluster" "$port")"
export PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE EXTENSION pg_sync;
CREATE TABLE notes (id text PRIMARY KEY, owner text, title text, body text, done boolean, n int,
                    updated_at timestamptz);
INSERT INTO notes SELECT 'note-' || lpad(g::text, 8, '0'), 'u1', 'title ' || g, repeat('x', 120), g % 2 = 0, g,
                         now() - g * interval '1 second'
  FROM generate_series(1, $rows) g;
CREATE INDEX ON notes (owner, id);
SELECT sync_register_table('notes', 'owner');
VACUUM ANALYZE notes;
SQL

# runs SQL in a new backend; prints "peak_rssanon_kb elapsed_ms"
measure() {
  local sql=$1 out="$tmp/m.out"
  psql -X -q -At -c "SELECT pg_backend_pid()" -c "SELECT set_config('request.jwt.claims', '{\"sub\": \"u1\"}', false)" \
       -c "\\timing on" -c "$sql" >"$out" 2>&1 &
  local ps=$! pid="" peak=0 v
  # the backend's pid is the first line psql prints
  for _ in $(seq 1 400); do pid=$(head -1 "$out" 2>/dev/null | grep -E '^[0-9]+$' || true); [ -n "$pid" ] && break; sleep 0.005; done
  while kill -0 "$ps" 2>/dev/null; do
    v=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$peak" ] && peak=$v
    sleep 0.005
  done
  wait "$ps"
  echo "$peak $(grep -o 'Time: [0-9.]*' "$out" | awk '{s+=$2} END {printf "%.0f", s}')"
}

unpaged=$(measure "SELECT length(sync_pull()::text)")
paged=$(measure "DO \$\$ DECLARE t bigint; r jsonb; BEGIN
  r := sync_pull(page_size => $page)::jsonb;
  WHILE r ? 'hasMore' LOOP t := (r->>'timestamp')::bigint; r := sync_pull(t)::jsonb; END LOOP; END \$\$")
read -r u_kb u_ms <<<"$unpaged"
read -r p_kb p_ms <<<"$paged"
echo "first pull of $rows rows, one backend each (peak RssAnon sampled every 5 ms)"
printf "  unpaged:            peak RssAnon %8d kB, %7d ms\n" "$u_kb" "$u_ms"
printf "  page_size => %-6s peak RssAnon %8d kB, %7d ms (every page, from one DO block)\n" "$page" "$p_kb" "$p_ms"
awk -v a="$p_kb" -v b="$u_kb" -v c="$p_ms" -v d="$u_ms" 'BEGIN {printf "  paged / unpaged: memory %.3fx, time %.2fx\n", a/b, c/d}'
