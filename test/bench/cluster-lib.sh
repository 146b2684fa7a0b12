# Sourced by the benchmark harnesses (run.sh, capture_designs.sh): a private
# PostgreSQL cluster in a directory under /tmp, run as the postgres user when
# started as root, stopped and removed on exit (also on failure or
# interrupt; BENCH_KEEP=1 keeps the directory).
#
# The caller sets bindir, port and the settings array (bench_settings plus
# its own), then calls
#   bench_workdir NAME     the directory: sets work, data, sock
#   bench_start LISTEN     initdb, start (listen_addresses = LISTEN), createdb bench
# and may define bench_on_exit, run first when the script exits. The server
# log is copied to $bench_logdir (default $out) on exit.

# Cluster settings both harnesses start from: a small production box (2
# cores, a few GB for PostgreSQL), durable commits. Each adds its
# checkpoint_timeout and autovacuum.
bench_settings=(
  "shared_buffers = 512MB"
  "work_mem = 16MB"
  "maintenance_work_mem = 256MB"
  "effective_cache_size = 4GB"
  "random_page_cost = 1.1"
  "fsync = on"
  "synchronous_commit = on"
  "full_page_writes = on"
  "wal_buffers = 16MB"
  "max_wal_size = 4GB"
  "checkpoint_completion_target = 0.9"
  "max_connections = 100"
  "jit = off"
)

. "$(dirname "${BASH_SOURCE[0]}")/../as-pg.sh"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

bench_workdir() {
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$work"
  data=$work/data
  sock=$work/sock
  mkdir -p "$sock" "$work/scripts"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$work"; fi
  started=0
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local rc=$? logdir=${bench_logdir:-$out}
  set +e
  declare -F bench_on_exit >/dev/null && bench_on_exit
  if [ "$started" = 1 ]; then
    as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 ||
      as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
  fi
  [ -f "$work/server.log" ] && cp "$work/server.log" "$logdir/server.log"
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "cluster directory kept: $work"
  else
    rm -rf "$work"
  fi
  [ "$rc" != 0 ] && echo "benchmark FAILED (exit $rc); server log: $logdir/server.log" >&2
  exit "$rc"
}

psql_() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql() { psql_ -At -c "$1"; }

bench_start() {
  export PGHOST=$sock PGPORT=$port PGUSER=postgres PGDATABASE=bench
  log "cluster: $work (port $port)"
  as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C >"$work/initdb.log"
  {
    echo "listen_addresses = '$1'"
    echo "unix_socket_directories = '$sock'"
    echo "port = $port"
    printf '%s\n' "${settings[@]}"
  } >>"$data/postgresql.conf"
  as_pg "$bindir/pg_ctl" -D "$data" -l "$work/server.log" -w start >/dev/null
  started=1
  "$bindir/createdb" bench
}

# Report lines of the machine and the server, for a run's header
bench_describe_host() {
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)"
  echo "- PostgreSQL: $(sql 'SHOW server_version')"
}
bench_describe_settings() {
  echo "- settings: $(sql "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
       FROM pg_settings WHERE name IN ('shared_buffers','work_mem','maintenance_work_mem','effective_cache_size',
       'random_page_cost','fsync','synchronous_commit','full_page_writes','wal_buffers','max_wal_size',
       'checkpoint_timeout','max_connections','jit','autovacuum','wal_sync_method')")"
}
