#!/usr/bin/env bash
# A primary and a streaming hot standby on loopback (the scale tests, the scale benchmark).
#   test/scale/topology.sh start DIR PRIMARY_PORT STANDBY_PORT
#       creates (if needed) and starts a primary in DIR/primary, then a standby of it; prints the
#       environment to source: PRIMARY_HOST/PRIMARY_PORT, STANDBY_HOST/STANDBY_PORT (sockets in
#       DIR), PGUSER
#   test/scale/topology.sh add-standby DIR PRIMARY_PORT STANDBY_PORT [APPLY_DELAY]
#       a hot standby in DIR/standby of the primary listening on 127.0.0.1:PRIMARY_PORT: a
#       pg_basebackup -R copy streaming from a physical slot; waits until it has replayed the
#       primary's WAL as of now. APPLY_DELAY sets recovery_min_apply_delay from the start: the
#       standby reaches the base backup's state and applies every later commit only that much
#       later (no delay applies before a standby is consistent), so '1h' freezes it at the backup
#   test/scale/topology.sh delay DIR VALUE    recovery_min_apply_delay on the standby, reloaded
#   test/scale/topology.sh stop DIR           stops the standby and the primary; drops the slot
#                                             when only the standby is there (add-standby's)
# PostgreSQL's binaries: pg_config on PATH (PG_CONFIG overrides). As root, the servers run as the
# postgres user. Listens on 127.0.0.1 only; trust authentication (throwaway clusters).
set -euo pipefail
cmd=${1:?start|add-standby|delay|stop}; dir=$(realpath -m "${2:?directory}")
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
. "$(cd "$(dirname "$0")" && pwd)/../as-pg.sh"
cd /   # the servers' user may not be able to enter the caller's directory
psql_() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -U postgres -d postgres "$@"; }
primary_sql() { psql_ -h 127.0.0.1 -p "$(cat "$dir/standby.primary-port")" "$@"; }
standby_sql() { psql_ -h "$dir/standby.sock" -p "$(cat "$dir/standby.port")" "$@"; }

add_standby() { # PRIMARY_PORT STANDBY_PORT [APPLY_DELAY]
  local pport=$1 sport=$2 delay=${3:-0} target ok=
  mkdir -p "$dir/standby.sock"
  echo "$pport" >"$dir/standby.primary-port"
  echo "$sport" >"$dir/standby.port"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir" "$dir/standby.sock"
  if [ ! -f "$dir/standby/PG_VERSION" ]; then
    primary_sql -c "SELECT pg_drop_replication_slot('pg_sync_standby') FROM pg_replication_slots WHERE slot_name = 'pg_sync_standby'" >/dev/null
    as_pg "$bindir/pg_basebackup" -h 127.0.0.1 -p "$pport" -U postgres -D "$dir/standby" \
      -R -X stream -C -S pg_sync_standby -c fast --no-sync
    cat >>"$dir/standby/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/standby.sock'
port = $sport
hot_standby = on
hot_standby_feedback = on
recovery_min_apply_delay = '$delay'
CONF
  fi
  as_pg "$bindir/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w start >/dev/null
  if [ "$delay" = 0 ]; then
    # caught up with what the primary has written so far (a bounded poll of the replay position)
    # (the end of a record written now: the insert position may lie past the last record)
    target=$(primary_sql -c "SELECT pg_logical_emit_message(false, 'pg_sync', 'standby')")
    for _ in $(seq 1 600); do
      ok=$(standby_sql -c "SELECT pg_last_wal_replay_lsn() >= '$target'" 2>/dev/null || true)
      [ "$ok" = t ] && break
      sleep 0.1
    done
    [ "$ok" = t ] || { echo "the standby did not catch up (see $dir/standby.log)" >&2; exit 1; }
  fi
}

case "$cmd" in
start)
  pport=${3:?primary port}; sport=${4:?standby port}
  mkdir -p "$dir/primary.sock"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
  if [ ! -f "$dir/primary/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$dir/primary" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log"
    cat >>"$dir/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/primary.sock'
port = $pport
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
max_prepared_transactions = 10
CONF
    [ -n "${TOPOLOGY_CONF:-}" ] && printf '%s\n' "$TOPOLOGY_CONF" >>"$dir/primary/postgresql.conf"
  fi
  as_pg "$bindir/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w start >/dev/null
  add_standby "$pport" "$sport"
  echo "export PRIMARY_HOST=$dir/primary.sock PRIMARY_PORT=$pport STANDBY_HOST=$dir/standby.sock STANDBY_PORT=$sport PGUSER=postgres"
  ;;
add-standby)
  add_standby "${3:?primary port}" "${4:?standby port}" "${5:-0}"
  echo "export STANDBY_HOST=$dir/standby.sock STANDBY_PORT=$4 PGUSER=postgres"
  ;;
delay)
  standby_sql -c "ALTER SYSTEM SET recovery_min_apply_delay = '${3:?value, e.g. 1h or 0}'" -c "SELECT pg_reload_conf()" >/dev/null
  ;;
stop)
  [ -f "$dir/standby/PG_VERSION" ] && { as_pg "$bindir/pg_ctl" -D "$dir/standby" -m fast -w stop >/dev/null 2>&1 || true; }
  if [ -f "$dir/primary/PG_VERSION" ]; then
    as_pg "$bindir/pg_ctl" -D "$dir/primary" -m fast -w stop >/dev/null 2>&1 || true
  elif [ -f "$dir/standby.primary-port" ]; then
    primary_sql -c "SELECT pg_drop_replication_slot('pg_sync_standby') FROM pg_replication_slots WHERE slot_name = 'pg_sync_standby' AND NOT active" >/dev/null 2>&1 || true
  fi
  ;;
*) echo "usage: $0 start DIR PRIMARY_PORT STANDBY_PORT | add-standby DIR PRIMARY_PORT STANDBY_PORT [DELAY] | delay DIR VALUE | stop DIR" >&2; exit 2 ;;
esac
