#!/usr/bin/env bash
# Checkpoint ids across a failover. A primary and a streaming hot standby
# (test/scale/topology.sh); the standby stops receiving while the primary
# hands out 40 more checkpoint ids (the checkpoint sequence writes its WAL 32
# values ahead, so the standby misses at least one such record); the primary
# goes away (immediate stop) and the standby is promoted. Checks on the new
# primary:
#   - without the move to a new timeline's ids, its sequence would have
#     handed out an id the old primary had already handed out (the case is
#     real);
#   - the ids it hands out are above every id of the old primary;
#   - once it has handed out as many ids as the old one did since, a token
#     of the old primary that never reached it is still refused as never
#     issued (SY003: the client resyncs) by pulls, paged pulls and pushes;
#   - a token that reached it still works and delivers what committed since;
#   - the timeline is recorded, the move logged once, a second session
#     does not move the ids again; no crash in the servers' logs.
# Needs pg_sync built and installed for the pg_config on PATH. Ports:
# PGSYNC_FAILOVER_PORT (56240) and the next one. Last line:
# "failover: N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pport=${PGSYNC_FAILOVER_PORT:-56240}
sport=$((pport + 1))
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
dir=$(mktemp -d /tmp/pg_sync_failover.XXXXXX)
chmod 755 "$dir"
cleanup() {
  bash "$root/test/scale/topology.sh" stop "$dir" >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
. "$root/test/as-pg.sh"
passed=0 failed=0
check() { # NAME, then a condition
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"
  else failed=$((failed + 1)); echo "not ok - $name"; fi
}
finish() { echo "failover: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

eval "$(bash "$root/test/scale/topology.sh" start "$dir" "$pport" "$sport")" || { failed=1; finish; }
old_sql() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -d postgres "$@"; }
new_sql() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$STANDBY_HOST" -p "$STANDBY_PORT" -d postgres "$@"; }

old_sql <<'SQL' || { failed=1; finish; }
CREATE EXTENSION pg_sync;
CREATE TABLE notes (id text PRIMARY KEY, owner text NOT NULL, body text);
SELECT sync_register_table('notes', owner_column => 'owner');
INSERT INTO notes VALUES ('n1', 'u1', 'before the failover');
SQL
old_sql -f "$here/../sqlstate_of.sql" || { failed=1; finish; }
t_shared=$(old_sql -c "SELECT sync_pull(user_id => 'u1')::jsonb->>'timestamp'")
tli_old=$(old_sql -c "SELECT timeline FROM _pg_sync.state")

# the standby has replayed all of it (bounded wait for a WAL position)
target=$(old_sql -c "SELECT pg_logical_emit_message(false, 'pg_sync', 'failover test')")
for _ in $(seq 1 600); do
  [ "$(new_sql -c "SELECT pg_last_wal_replay_lsn() >= '$target'")" = t ] && break
  sleep 0.1
done
check "the standby has the shared token's checkpoint" \
  test "$(new_sql -c "SELECT count(*) FROM _pg_sync.checkpoints WHERE id = $t_shared")" = 1

# it stops receiving; the primary hands out 40 more ids, then goes away
as_pg "$bindir/pg_ctl" -D "$dir/standby" -m fast -w stop >/dev/null
lost=""
for i in $(seq 1 40); do
  lost="$lost $(old_sql -c "INSERT INTO notes VALUES ('lost$i', 'u1', 'never replicated')" -c "SELECT sync_checkpoint()")"
done
t_lost=$(old_sql -c "INSERT INTO notes VALUES ('lost', 'u1', 'never replicated')" \
                 -c "SELECT sync_pull(user_id => 'u1')::jsonb->>'timestamp'")
max_lost=$t_lost
for id in $lost; do [ "$id" -gt "$max_lost" ] && max_lost=$id; done
as_pg "$bindir/pg_ctl" -D "$dir/primary" -m immediate -w stop >/dev/null
as_pg "$bindir/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w start >/dev/null
as_pg "$bindir/pg_ctl" -D "$dir/standby" -w promote >/dev/null
check "the standby is promoted" test "$(new_sql -c "SELECT pg_is_in_recovery()")" = f

# the new primary hands out ids
new_sql -c "INSERT INTO notes VALUES ('n2', 'u1', 'after the failover')"
first=$(new_sql -c "SELECT sync_checkpoint()")
new_sql -c "INSERT INTO notes VALUES ('n3', 'u1', 'after the failover')"
second=$(new_sql -c "SELECT sync_checkpoint()")
jump=$((1 << 30))
echo "  old primary's last ids: ${lost##* } (pull token $t_lost); new primary's first: $first, then $second"
check "without the move, the new primary would hand out an id the old one had (the case is real)" \
  test $((first - jump - 1)) -le "$max_lost"
check "the new primary's ids are above every id of the old one" test "$first" -gt "$max_lost"
check "a second session does not move them again" test "$second" -gt "$first" -a "$second" -lt $((first + 1000))
check "the new timeline is recorded" \
  test "$(new_sql -c "SELECT timeline FROM _pg_sync.state")" = "$((tli_old + 1))"
check "the move is logged once" test "$(grep -c "checkpoint ids now start above" "$dir/standby.log")" = 1

# the new primary hands out as many ids as the old one did after the
# standby stopped: without the move, the lost tokens would now name its
# checkpoints, of later snapshots
for i in $(seq 1 45); do
  new_sql -c "INSERT INTO notes VALUES ('new$i', 'u1', 'after the failover')" -c "SELECT sync_checkpoint()" >/dev/null
done
# the old primary's tokens
check "a pull with the old primary's lost pull token: SY003" \
  test "$(new_sql -c "SELECT sqlstate_of(\$\$SELECT sync_pull($t_lost, user_id => 'u1')\$\$)")" = SY003
check "a pull with the old primary's last lost checkpoint: SY003" \
  test "$(new_sql -c "SELECT sqlstate_of(\$\$SELECT sync_pull(${lost##* }, user_id => 'u1')\$\$)")" = SY003
check "a paged pull with a lost token: SY003" \
  test "$(new_sql -c "SELECT sqlstate_of(\$\$SELECT sync_pull($t_lost, user_id => 'u1', page_size => 1)\$\$)")" = SY003
check "a push with a lost token: SY003" \
  test "$(new_sql -c "SELECT sqlstate_of(\$\$SELECT sync_push('{\"notes\": {\"created\": [], \"updated\": [{\"id\": \"n1\", \"body\": \"x\"}], \"deleted\": []}}', $t_lost, user_id => 'u1')\$\$)")" = SY003
# a token that reached the new primary
got=$(new_sql -c "SELECT (SELECT string_agg(r->>'id', ',' ORDER BY r->>'id' COLLATE \"C\")
                            FROM jsonb_array_elements((p->'changes'->'notes'->'created') || (p->'changes'->'notes'->'updated')) r)
                     FROM (SELECT sync_pull($t_shared, user_id => 'u1')::jsonb AS p) s")
want=$(printf '%s\n' n2 n3 $(seq -f 'new%g' 1 45) | LC_ALL=C sort | paste -sd,)
check "a pull with a replicated token delivers what committed since, and nothing lost" test "$got" = "$want"
check "no crash or failed assertion in the server logs" \
  bash -c "! grep -qE 'TRAP:|terminated by signal' '$dir/primary.log' '$dir/standby.log'"
finish
