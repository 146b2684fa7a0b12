#!/usr/bin/env bash
# Throwaway PostgreSQL cluster on a private socket.
#   test/cluster.sh start DIR [PORT]   creates (if needed) and starts; prints env to source
#   test/cluster.sh stop DIR
# As root, the cluster runs as the unprivileged "postgres" user. PGSYNC_LISTEN=127.0.0.1
# also opens TCP on loopback (set when the cluster is created).
set -euo pipefail
cmd=${1:?start|stop}; dir=$(realpath -m "${2:?directory}"); port=${3:-54329}
bindir=$(pg_config --bindir)
. "$(cd "$(dirname "$0")" && pwd)/as-pg.sh"
# the cluster's user may not be able to enter the caller's directory (a 0700 home)
cd /
case "$cmd" in
start)
  mkdir -p "$dir/sock"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log"
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '${PGSYNC_LISTEN:-}'
unix_socket_directories = '$dir/sock'
port = $port
fsync = off
max_prepared_transactions = 10
shared_buffers = 256MB
CONF
  fi
  if ! as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null; then
    echo "the server did not start; the end of $dir/server.log:" >&2
    tail -n 20 "$dir/server.log" >&2 || true
    exit 1
  fi
  echo "export PGHOST=$dir/sock PGPORT=$port PGUSER=postgres"
  ;;
stop)
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  ;;
*) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
