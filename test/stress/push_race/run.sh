#!/usr/bin/env bash
# Push races under sync_prune: 8 clients pull and push overlapping records of
# 30 ids into an "abort" and a "client_wins" table, 2 SQL writers change the
# same rows, and sync_prune runs every 200 ms, for DURATION seconds. Four of
# the clients name their device (client_id): they keep what their pushes
# applied and are not sent it back while it is as they pushed it. Passes
# when no push overwrote a change its client had not seen under "abort" (no
# lost update), nothing anywhere failed with a deadlock (40P01) or an
# unexpected error, pushes (devices' among them) applied and conflicted, and
# every client's replica equals the tables at the end. Needs PGHOST/PGPORT/PGUSER of a server with
# pg_sync installed.
set -euo pipefail
cd "$(dirname "$0")"
duration=${DURATION:-20}
db=pg_sync_push_race
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -d $db -v ON_ERROR_STOP=1 -f setup.sql >/dev/null
logs=$(mktemp -d)
pgbench -n -f client.sql -c 8 -j 2 -T "$duration" $db > "$logs/clients.log" 2>&1 &
c=$!
pgbench -n -f writer.sql -c 2 -T "$duration" $db > "$logs/writers.log" 2>&1 &
w=$!
pgbench -n -f prune.sql -c 1 -T "$duration" $db > "$logs/prune.log" 2>&1 &
p=$!
fail=0
wait $c || fail=1
wait $w || fail=1
wait $p || fail=1
[ "$fail" = 0 ] || cat "$logs"/*.log
rm -rf "$logs"
result=$(psql -X -q -d $db -At -F ' ' -v ON_ERROR_STOP=1 -f check.sql | grep -E '^(differences|lost updates|client_wins|deadlocks|outcome) ')
echo "$result" | sed 's/^/  /'
get() { echo "$result" | awk -v k="$1" 'index($0, k " ") == 1 {print $NF}'; }
differences=$(get differences)
lost=$(get 'lost updates')
deadlocks=$(get deadlocks)
applied=$(get 'outcome push ok')
device_applied=$(get 'outcome device-push ok')
conflicts=$(get 'outcome push SY001')
# the only errors allowed: push conflicts (SY001) and expired tokens (SY002)
unexpected=$(echo "$result" | awk '/^outcome / && $3 != "ok" && $3 != "SY001" && $3 != "SY002" && $3 != "removed" {print}')
[ -n "$unexpected" ] && echo "  unexpected outcomes: $unexpected"
[ "$differences" = 0 ] && [ "$lost" = 0 ] && [ "$deadlocks" = 0 ] && [ -z "$unexpected" ] &&
  [ "${applied:-0}" -gt 0 ] && [ "${device_applied:-0}" -gt 0 ] && [ "${conflicts:-0}" -gt 0 ] && [ "$fail" = 0 ]
