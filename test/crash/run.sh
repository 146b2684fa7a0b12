#!/usr/bin/env bash
# Crash safety. Starts its own throwaway cluster (port PGSYNC_CRASH_PORT,
# default 55497) with the installed pg_sync, and:
#  A. kill -9 of a backend in the middle of a 10,000-record push: the push is
#     held at one record by a row trigger waiting for an advisory lock that a
#     control session holds, and killed once pg_locks shows it waiting. After
#     crash recovery: nothing of the push is there, sync_verify() finds no
#     problem, the client's token from before the crash pulls exactly the
#     changes committed since, the retried push applies all 10,000 records,
#     and replicas built from pulls equal the tables.
#  B. pg_ctl stop -m immediate under a mixed pgbench load (pullers, devices
#     that pull and push 10-100 new records with a ledger entry in the same
#     transaction, plain SQL writers, sync_prune('1 second') every 200 ms),
#     once progress counters show every kind of work committed and a push is
#     running. After the restart: every push is all or nothing (ledger against
#     data), sync_verify() finds no problem, every client's last committed
#     token works or answers SY002, and after pulling to the end every
#     client's replica equals the tables.
#  C. lazy checkpoints: with the WAL writer stopped, a pull in a transaction
#     of its own commits without waiting for its WAL, and one with
#     pg_sync.durable_checkpoints on, or that wrote before or after pulling,
#     waits. Then a kill -9 of the WAL writer (crash recovery) loses the last
#     lazy checkpoint: its token is refused as never issued (SY003) by a pull
#     and a push, its id is not handed out again (while a plain sequence
#     moved by a commit that did not wait hands out the same value again),
#     and the tokens kept answer exactly what committed after them.
# Finally the server log must show no crash but the kill -9s of scenarios A
# and C.
# Exits 0 when everything holds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster="$here/../cluster.sh"
port=${PGSYNC_CRASH_PORT:-55497}
db=pg_sync_crash
bindir=$(pg_config --bindir)

. "$here/../as-pg.sh"

tmp=$(mktemp -d /tmp/pg_sync_crash.XXXXXX)
chmod 755 "$tmp"
work="$tmp/work"          # files of this script (the cluster lives in $tmp/data)
mkdir -p "$work"
bg_pids=()
cleanup() {
  local rc=$? p
  set +e
  exec 3>&-
  [ -n "${walwriter:-}" ] && kill -CONT "$walwriter" 2>/dev/null
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -f "$tmp/data/PG_VERSION" ] && bash "$cluster" stop "$tmp" >/dev/null 2>&1
  if [ "$rc" != 0 ] && [ -f "$tmp/server.log" ]; then
    echo "crash: server log (last 40 lines):"
    tail -n 40 "$tmp/server.log" | sed 's/^/  | /'
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

fail() { echo "crash: FAILED: $*" >&2; exit 1; }
q() { psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# value of the "name value" line "name" in $out
get() { printf '%s\n' "$out" | awk -v k="$1" 'index($0, k " ") == 1 { print substr($0, length(k) + 2); exit }'; }
# expect NAME WANT: the line NAME of $out must say WANT
expect() {
  local v; v=$(get "$1")
  [ "$v" = "$2" ] || { printf '%s\n' "$out" | sed 's/^/  | /'; fail "$1: got '${v}', want '$2'"; }
}
# waits until the SQL query prints a line (bounded: tries x 0.1 s)
poll() {
  local what=$1 sql=$2 tries=$3 r
  for ((i = 0; i < tries; i++)); do
    r=$(q -c "$sql" 2>/dev/null || true)
    [ -n "$r" ] && { printf '%s\n' "$r"; return 0; }
    sleep 0.1
  done
  fail "timed out waiting for $what"
}
log_size() { stat -c %s "$tmp/server.log"; }
# waits until the server has finished crash recovery after log offset $1
wait_recovered() {
  local from=$1
  for ((i = 0; i < 300; i++)); do
    if tail -c +"$((from + 1))" "$tmp/server.log" | grep -q 'database system is ready to accept connections' &&
       psql -X -q -At -d "$db" -c 'SELECT 1' >/dev/null 2>&1; then
      tail -c +"$((from + 1))" "$tmp/server.log" | grep -q 'automatic recovery in progress' ||
        fail "the server came back without crash recovery"
      return 0
    fi
    sleep 0.1
  done
  fail "server did not come back after the crash"
}

start=$SECONDS
eval "$(bash "$cluster" start "$tmp" "$port")"
export PGHOST PGPORT PGUSER
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db"
q -f "$here/setup.sql" >/dev/null
echo "crash: cluster on port $port, database $db, pg_sync $(q -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_sync'")"

# ---------------------------------------------------------------- scenario A
q -f "$here/a_setup.sql" >/dev/null
echo "crash: A: clients 101 (u1) and 102 (u2) pulled; token T0 = $(q -c "SELECT v FROM saved WHERE name = 'T0'"); SQL writes committed after T0"

# control session: takes advisory lock 4242 in an open transaction that also
# inserted a row (both die with the crash)
mkfifo "$work/ctl"
psql -X -q -d "$db" -v ON_ERROR_STOP=1 <"$work/ctl" >"$work/ctl.log" 2>&1 &
ctl_pid=$!
bg_pids+=("$ctl_pid")
exec 3>"$work/ctl"
echo "SET application_name = 'crash_ctl'; BEGIN; INSERT INTO notes VALUES ('a-uncommitted', 'u1', 'never', 0); SELECT pg_advisory_xact_lock(4242);" >&3
poll "the control session's lock" "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
  WHERE l.locktype = 'advisory' AND l.objid = 4242 AND l.objsubid = 1 AND l.granted AND a.application_name = 'crash_ctl'" 300 >/dev/null

psql -X -q -At -d "$db" -v ON_ERROR_STOP=1 -f "$here/a_push.sql" >"$work/push.log" 2>&1 &
push_pid=$!
bg_pids+=("$push_pid")
victim=$(poll "the push to block on the lock" "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
  WHERE l.locktype = 'advisory' AND l.objid = 4242 AND l.objsubid = 1 AND NOT l.granted AND a.application_name = 'crash_push'" 600)
# rows the push had written when it blocked (the blocked row is counted too)
written=$(q -c "SELECT CASE WHEN is_called THEN last_value - 1 ELSE -1 END FROM push_progress")
if [ "$written" -le 0 ] || [ "$written" -ge 9999 ]; then fail "push blocked after $written rows, not in the middle"; fi
# a transaction that commits while the push is held: its change is after T0
q -c "INSERT INTO notes VALUES ('a-late', 'u1', 'late', 1)"
echo "crash: A: push of 10,000 records (backend $victim) held at record p-04700 with $written rows written (uncommitted); another transaction committed meanwhile"

from=$(log_size)
kill -9 "$victim"
wait "$push_pid" && fail "the killed push reported success: $(cat "$work/push.log")"
exec 3>&-
wait "$ctl_pid" || true
bg_pids=()
wait_recovered "$from"
tail -c +"$((from + 1))" "$tmp/server.log" | grep -qE "(server process|client backend) \(PID $victim\) was terminated by signal 9" ||
  fail "the server log does not show the kill -9 of $victim"
echo "crash: A: kill -9 of backend $victim; server recovered"

out=$(q -f "$here/a_check.sql") || { printf '%s\n' "$out" | sed 's/^/  | /'; fail "A: check failed"; }
expect 'pushed notes present' 0
expect 'pushed tags present' 0
expect 'pushed updates present' 0
expect 'uncommitted row present' 0
expect 'late commit present' 1
echo "crash: A: all or nothing: none of the 10,000 records, no uncommitted row ... ok"
expect 'verify problems' 0
echo "crash: A: sync_verify() after recovery: no problems ... ok"
expect 't0 is the client token' t
expect 't0 reset' false
expect 't0 unexpected' 0
expect 't0 missing' 0
echo "crash: A: token T0 from before the crash pulls exactly the $(get 't0 changes') changes committed since ... ok"

out=$(q -f "$here/a_retry.sql") || { printf '%s\n' "$out" | sed 's/^/  | /'; fail "A: retry failed"; }
expect 'retry records' 10000
expect 'pushed rows present' 10000
echo "crash: A: retried push with T0 applies all 10,000 records ($(get 'retry result')) ... ok"
expect 'verify problems' 0
expect 'replica differences' 0
echo "crash: A: replicas of 3 clients ($(get 'replica rows') rows) equal the tables; sync_verify() clean ... ok"
echo "crash: kill -9 mid-push ... ok"

# ---------------------------------------------------------------- scenario B
q -f "$here/b_setup.sql" >/dev/null
PGAPPNAME=crash_puller pgbench -n -f "$here/b_pull.sql" -c 4 -j 2 -T 40 "$db" >"$work/pull.log" 2>&1 &
bg_pids+=("$!")
PGAPPNAME=crash_device pgbench -n -f "$here/b_device.sql" -c 3 -j 1 -T 40 "$db" >"$work/device.log" 2>&1 &
bg_pids+=("$!")
PGAPPNAME=crash_writer pgbench -n -f "$here/b_write.sql" -c 2 -j 1 -T 40 "$db" >"$work/write.log" 2>&1 &
bg_pids+=("$!")
PGAPPNAME=crash_prune pgbench -n -f "$here/b_prune.sql" -c 1 -T 40 "$db" >"$work/prune.log" 2>&1 &
bg_pids+=("$!")
# until every kind of work has committed (and sync_prune removed
# checkpoints), then stop the server while a push is running
progress=$(poll "load progress" "SELECT * FROM b_progress
  WHERE pushes >= 30 AND pulls >= 200 AND writes >= 100 AND prune_runs >= 5 AND pruned > 0 AND inflight > 0" 300)
as_pg "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null
read -r pushes pulls writes runs pruned _ <<<"$progress"
echo "crash: B: load running (pullers 4, devices 3, writers 2, sync_prune('1 second') every 200 ms); pg_ctl stop -m immediate after $pushes pushes, $pulls pulls, $writes writes, $runs prune runs ($pruned checkpoints pruned), a push running"
for p in "${bg_pids[@]}"; do wait "$p" || true; done
bg_pids=()
from=$(log_size)
bash "$cluster" start "$tmp" "$port" >/dev/null
wait_recovered "$from"
echo "crash: B: server restarted after crash recovery"

out=$(q -f "$here/b_check.sql") || { printf '%s\n' "$out" | sed 's/^/  | /'; fail "B: check failed"; }
expect 'unexpected errors' 0
[ "$(get 'committed pushes')" -gt 0 ] || fail "B: no push committed"
expect 'ledger records missing' 0
expect 'ledger entries incomplete' 0
expect 'records without ledger entry' 0
echo "crash: B: all or nothing: $(get 'committed pushes') committed pushes ($(get 'committed pushed records') records) all there, no record without its ledger entry ... ok"
expect 'verify problems' 0
echo "crash: B: sync_verify() after the restart: no problems ... ok"
tok_ok=$(get 'tokens ok'); tok_expired=$(get 'tokens SY002')
bad_tokens=$(printf '%s\n' "$out" | grep '^token of client ' || true)
[ -z "$bad_tokens" ] || { echo "$bad_tokens" | sed 's/^/  | /'; fail "B: tokens answered other than ok/SY002"; }
[ "${tok_ok:-0}" -gt 0 ] || fail "B: no client's token from before the crash works"
expired_clients=$(get 'expired token clients')
echo "crash: B: last committed tokens of $(get 'clients') clients: ${tok_ok:-0} work, ${tok_expired:-0} answer SY002 (pruned by sync_prune before the crash) ... ok"
[ -z "$expired_clients" ] || echo "crash: B:   SY002: clients $expired_clients"
expect 'verify problems after pulls' 0
expect 'replica differences' 0
echo "crash: B: after pulling to the end, $(get 'clients') replicas ($(get 'replica rows') rows) equal the tables both ways ... ok"
echo "crash: B: during the load: $(get 'pulls') pulls, $(get 'resets') resets, $(get 'expired pushes') expired pushes, $(get 'writes') writes, $(get 'prune runs') prune runs removed $(get 'pruned checkpoints') checkpoints and $(get 'pruned tombstones') tombstones"
echo "crash: pg_ctl stop -m immediate under load ... ok"

# ---------------------------------------------------------------- scenario C
# nothing but a commit that waits (or a CHECKPOINT) writes WAL out
q -c "ALTER SYSTEM SET autovacuum = off" -c "ALTER SYSTEM SET bgwriter_lru_maxpages = 0" \
  -c "ALTER SYSTEM SET checkpoint_timeout = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
walwriter=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
[ -n "$walwriter" ] || fail "C: no WAL writer process"
kill -STOP "$walwriter"
out=$(q -f "$here/c_run.sql") || { printf '%s\n' "$out" | sed 's/^/  | /'; fail "C: the pulls before the crash failed"; }
expect 'k1 waited' f
expect 'k2 waited' t
expect 'k3 waited' t
expect 'k4 waited' t
expect 'n waited' f
expect 'distinct tokens' 5
echo "crash: C: WAL writer stopped; a pull in a transaction of its own did not wait for its WAL; with pg_sync.durable_checkpoints on, or after or before a write in its transaction, it did ... ok"
vars=()
for k in k1 k2 k3 k4 n ctl; do vars+=(-v "$k=$(get "token_$k")"); done
lost=$(get token_n) control=$(get token_ctl)
from=$(log_size)
kill -KILL "$walwriter"
wal_victim=$walwriter
walwriter=
wait_recovered "$from"
echo "crash: C: kill -9 of the WAL writer (PID $wal_victim); the server restarted after crash recovery"
out=$(q "${vars[@]}" -f "$here/c_check.sql") || { printf '%s\n' "$out" | sed 's/^/  | /'; fail "C: check failed"; }
expect 'control value handed out again' t
expect 'lost checkpoint rows' 0
expect 'kept checkpoint rows' 4
expect 'notes of c1' 'c-1,c-2,c-3,c-4,c-5,c-6'
echo "crash: C: the crash lost the last lazy checkpoint ($lost) and kept the other 4 and every row; a plain sequence handed out $control again ... ok"
expect 'sequence at or above n' t
expect 'n pull' SY003
expect 'n push' SY003
expect 'new id above n' t
echo "crash: C: the lost checkpoint's token is refused as never issued by a pull and a push; its id is not handed out again ... ok"
expect 'k1 pulls' 'c-2,c-3,c-4,c-5,c-6'
expect 'k4 pulls' 'c-5,c-6'
echo "crash: C: the tokens kept pull exactly what committed after them ... ok"

# ---------------------------------------------------------------- server log
crashes=$(grep -E 'terminated by signal|PANIC|[Ss]egmentation fault|TRAP:' "$tmp/server.log" |
  grep -vE "(server process|client backend) \(PID $victim\) was terminated by signal 9" |
  grep -vE "\(PID $wal_victim\) was terminated by signal 9" || true)
[ -z "$crashes" ] || { echo "$crashes" | sed 's/^/  | /'; fail "the server log shows crashes not caused by the test"; }
echo "crash: server log: no crash but the kill -9 of backend $victim and of the WAL writer $wal_victim ... ok"
echo "crash: all checks passed in $((SECONDS - start)) s"
