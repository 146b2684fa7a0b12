#!/usr/bin/env bash
# Convergence under concurrency: 6 writers (random sleeps inside their
# transactions, so commits land out of order), 1 writer holding transactions
# open for 2 s, 4 clients pulling, and VACUUM (ANALYZE) of the change
# records back to back, for DURATION seconds. Afterwards every
# client's replica must equal the table exactly, and no row version may have
# been delivered twice to one client. Needs PGHOST/PGPORT/PGUSER of a server
# with pg_sync installed. Prints "N passed, N failed" style result lines.
set -euo pipefail
cd "$(dirname "$0")"
duration=${DURATION:-20}
db=pg_sync_stress
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -d $db -v ON_ERROR_STOP=1 -f setup.sql >/dev/null
pgbench -n -f writer.sql -c 6 -j 2 -T "$duration" $db > writers.log 2>&1 &
w=$!
pgbench -n -f long_writer.sql -c 1 -T "$duration" $db > long.log 2>&1 &
l=$!
pgbench -n -f puller.sql -c 4 -j 2 -T "$duration" $db > pullers.log 2>&1 &
p=$!
pgbench -n -f vacuumer.sql -c 1 -T "$duration" $db > vacuumer.log 2>&1 &
v=$!
fail=0
wait $w || fail=1
wait $l || fail=1
wait $p || fail=1
wait $v || fail=1
for f in writers.log long.log pullers.log vacuumer.log; do
  grep -E "number of (transactions actually processed|failed transactions)|tps" "$f" | sed "s/^/  $f: /" || true
done
result=$(psql -X -q -d $db -At -F ' ' -v ON_ERROR_STOP=1 -f check.sql | grep -E '^(missing|extra|duplicate deliveries|clients) ')
echo "$result" | sed 's/^/  /'
deliveries=$(psql -X -q -d $db -At -c "SELECT sum(n) FROM seen")
echo "  row versions delivered: $deliveries"
missing=$(echo "$result" | awk '/^missing/ {print $2}')
extra=$(echo "$result" | awk '/^extra/ {print $2}')
dups=$(echo "$result" | awk '/^duplicate/ {print $3}')
[ "$missing" = 0 ] && [ "$extra" = 0 ] && [ "$dups" = 0 ] && [ "$fail" = 0 ] && [ "${deliveries:-0}" -gt 0 ]
