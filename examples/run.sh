#!/usr/bin/env bash
# make run: a local PostgreSQL 15 with pg_sync and the demo schema, and one HTTP server on
# 127.0.0.1 with the sync edge function (/sync/pull, /sync/push), the demo web app (/) and a
# development-only token route (/dev/token?user=NAME). Prints the URLs, a psql line and a dev JWT.
# Ctrl-C stops everything it started; running it again reuses the cluster.
#
# Variables (README, "The two commands"):
#   PGSYNC_PORT        PostgreSQL's TCP port on 127.0.0.1 (default 54320, or the next free one)
#   PGSYNC_HTTP_PORT   the HTTP server's port (default 8787, or the next free one)
#   PGSYNC_RUN_DIR     where the state lives: cluster, JWT secret, tools, web build (default ./.run)
#   PGSYNC_SKIP_BUILD  1: use the pg_sync already installed instead of building and installing it
#   PGSYNC_DENO        a deno binary to use instead of installing one from npm
# A port set explicitly is used or refused, never replaced by another.
set -uo pipefail
[ -n "${PGSYNC_RUN_DIR:-}" ] && PGSYNC_RUN_DIR=$(realpath -m "$PGSYNC_RUN_DIR") # relative to where it was started
cd "$(dirname "$0")/.."
root=$(pwd)
run=$(realpath -m "${PGSYNC_RUN_DIR:-$root/.run}")
. "$root/test/ensure-deps.sh" # SUDO, PostgreSQL 15 first on PATH, ensure_deps

say() { printf '%s\n' "$*"; }
die() { printf 'make run: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
# PostgreSQL refuses to run as root: as root the cluster belongs to the "postgres" user.
as_pg() { (cd / && if is_root; then runuser -u postgres -- "$@"; else "$@"; fi); }

# --- one make run per state directory -------------------------------------------------------------
mkdir -p "$run" || die "cannot create $run"
lock="$run/run.pid"
if [ -f "$lock" ]; then
  other=$(cat "$lock" 2>/dev/null)
  if [ -n "$other" ] && [ "$other" != $$ ] && kill -0 "$other" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$other/cmdline" 2>/dev/null | grep -q 'examples/run.sh'; then
    die "make run is already running for $run (pid $other); stop it first (Ctrl-C in its terminal)"
  fi
fi
echo $$ >"$lock"

pg_started=""; fn_pid=""; stopping=""
cleanup() {
  set +e
  stopping=1
  if [ -n "$fn_pid" ] && kill -0 "$fn_pid" 2>/dev/null; then
    kill -TERM "$fn_pid" 2>/dev/null
    wait "$fn_pid" 2>/dev/null
  fi
  if [ -n "$pg_started" ]; then
    as_pg pg_ctl -D "$data" -m fast -w stop >/dev/null 2>&1 || say "make run: could not stop PostgreSQL (data directory $data)" >&2
    echo; say "stopped (PostgreSQL and the sync server)"
  fi
  [ "$(cat "$lock" 2>/dev/null)" = $$ ] && rm -f "$lock"
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP

ensure_deps || die "could not install the packages it needs (see above)"
command -v node >/dev/null || die "node is missing"

# --- where the cluster lives --------------------------------------------------------------------
# In the state directory, unless the server's user cannot reach it (a checkout under a 0700
# directory such as /root, run as root): then in that user's home, one cluster per state directory.
key=$(printf '%s' "$run" | sha1sum | cut -c1-12)
pgdir="$run/pg"
if is_root; then
  mkdir -p "$pgdir" && chown postgres: "$pgdir" || die "cannot create $pgdir"
  if ! runuser -u postgres -- test -x "$pgdir" -a -w "$pgdir" 2>/dev/null; then
    home=$(getent passwd postgres | cut -d: -f6)
    [ -d "$home" ] || home=/var/tmp
    pgdir="$home/pg_sync-run/$key"
    mkdir -p "$pgdir" && chown postgres: "$home/pg_sync-run" "$pgdir" || die "cannot create $pgdir"
    printf '%s\n' "$pgdir" >"$run/pg-location"
  fi
fi
data="$pgdir/data"
sock="$pgdir/sock"
# a Unix socket path is at most 107 bytes
if [ $((${#sock} + 20)) -gt 107 ]; then sock="/tmp/pg_sync-sock-$key"; fi

# A cluster an earlier run left running (killed without its cleanup) holds its port: stop it.
if [ -f "$data/postmaster.pid" ] && as_pg pg_ctl -D "$data" status >/dev/null 2>&1; then
  say "make run: stopping the PostgreSQL an earlier make run left running ($data)"
  as_pg pg_ctl -D "$data" -m fast -w stop >/dev/null || die "could not stop it: pg_ctl -D $data stop"
fi

# --- ports: checked before anything starts --------------------------------------------------------
port_free() {
  node -e 'const s = require("net").createServer(); s.once("error", () => process.exit(1));
           s.listen(Number(process.argv[1]), "127.0.0.1", () => s.close(() => process.exit(0)))' "$1"
}
pick_port() { # VARIABLE DEFAULT [PORT TO AVOID]: prints the port to use, or stops with one line
  local var=$1 default=$2 avoid=${3:-} value=${!1:-} p
  if [ -n "$value" ]; then
    [[ $value =~ ^[0-9]+$ ]] && [ "$value" -ge 1 ] && [ "$value" -le 65535 ] || die "$var=$value is not a port number"
    [ "$value" != "$avoid" ] || die "PGSYNC_PORT and PGSYNC_HTTP_PORT are both $value: set different ports"
    port_free "$value" || die "port $value ($var) is in use by another program: set $var to a free port, e.g. $var=$((value + 1)) make run"
    echo "$value"; return
  fi
  for p in $(seq "$default" $((default + 30))); do
    [ "$p" = "$avoid" ] && continue
    if port_free "$p"; then
      [ "$p" = "$default" ] || say "make run: port $default is in use by another program; using $p ($var chooses)" >&2
      echo "$p"; return
    fi
  done
  die "ports $default to $((default + 30)) are all in use: set $var to a free port"
}
port=$(pick_port PGSYNC_PORT 54320) || exit 1
http_port=$(pick_port PGSYNC_HTTP_PORT 8787 "$port") || exit 1

# --- build and tools ----------------------------------------------------------------------------
if [ "${PGSYNC_SKIP_BUILD:-}" = 1 ]; then
  [ -f "$(pg_config --pkglibdir)/pg_sync.so" ] || die "PGSYNC_SKIP_BUILD=1 but pg_sync is not installed (make && sudo make install)"
else
  say "== building and installing pg_sync"
  make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null || die "the build failed"
  $SUDO make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null || die "make install failed"
fi
deno=${PGSYNC_DENO:-$run/tools/node_modules/.bin/deno}
if [ ! -x "$deno" ]; then
  [ -z "${PGSYNC_DENO:-}" ] || die "PGSYNC_DENO=$PGSYNC_DENO is not an executable"
  say "== installing Deno (npm)"
  npm install --prefix "$run/tools" --no-audit --no-fund --silent deno@2.9.6 >/dev/null || die "could not install Deno with npm"
fi
web="$root/examples/web"
if [ ! -x "$web/node_modules/.bin/esbuild" ] || [ ! -d "$web/node_modules/@nozbe/watermelondb" ]; then
  say "== installing the web app's packages (npm)"
  npm install --prefix "$web" --no-audit --no-fund --silent >/dev/null || die "could not install the web app's packages"
fi
bash "$web/build.sh" "$run/web" || die "could not build the web app"

# --- PostgreSQL -----------------------------------------------------------------------------------
mkdir -p "$sock" || die "cannot create $sock"
if is_root; then chown postgres: "$sock" || die "cannot hand $sock to the postgres user"; fi
if [ ! -f "$data/PG_VERSION" ]; then
  say "== creating the cluster in $data"
  as_pg initdb -D "$data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$pgdir/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -n 3 "$pgdir/initdb.log")"
  cat >>"$data/postgresql.conf" <<CONF
fsync = off
max_prepared_transactions = 10
shared_buffers = 256MB
CONF
fi
# Port, address and socket are rewritten at every start, so that a changed PGSYNC_PORT takes effect.
grep -qx "include_if_exists = 'pg_sync_run.conf'" "$data/postgresql.conf" ||
  echo "include_if_exists = 'pg_sync_run.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
as_pg tee "$data/pg_sync_run.conf" >/dev/null <<CONF
# written by make run (examples/run.sh) at every start
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '${sock//\'/\'\'}'
CONF
pg_started=1
if ! as_pg pg_ctl -D "$data" -l "$pgdir/server.log" -w start >/dev/null 2>&1; then
  say "make run: PostgreSQL did not start; the end of $pgdir/server.log says:" >&2
  tail -n 5 "$pgdir/server.log" | sed 's/^/  /' >&2
  exit 1
fi
export PGHOST=$sock PGPORT=$port PGUSER=postgres
PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$root/examples/demo.sql" >/dev/null ||
  die "loading examples/demo.sql failed"

# --- the HTTP server ----------------------------------------------------------------------------
[ -s "$run/jwt_secret" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$run/jwt_secret")
fn="$root/examples/supabase/functions/sync"
instance=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_server() {
  (
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" JWT_SECRET="$(cat "$run/jwt_secret")" \
      PORT=$http_port HOST=127.0.0.1 PGSYNC_INSTANCE=$instance PGSYNC_DEV_TOKENS=1 PGSYNC_WEB_DIR="$run/web"
    cd "$fn" && exec "$deno" run --quiet --config "$fn/deno.json" --allow-net --allow-env --allow-read \
      --allow-write="$fn" --allow-sys "$root/examples/dev/server.ts"
  ) &
  fn_pid=$!
  # Ready when this server answers with this run's instance id: another program on the port
  # cannot pass for it. Bounded: Deno fetches its npm packages on its first start.
  for _ in $(seq 1 240); do
    curl -s --max-time 2 "http://127.0.0.1:$http_port/dev/health" 2>/dev/null | grep -q "\"$instance\"" && return 0
    if ! kill -0 "$fn_pid" 2>/dev/null; then
      wait "$fn_pid"; describe_exit $?
      say "make run: the sync server did not start: it $why (see its output above)" >&2
      fn_pid=""
      return 1
    fi
    sleep 0.5
  done
  say "make run: the sync server did not answer on port $http_port within 2 minutes" >&2
  return 1
}
describe_exit() {
  if [ "$1" -gt 128 ]; then why="was killed by signal $(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))"
  else why="exited with status $1"; fi
}
start_server || exit 1

token=$(node "$root/examples/dev/token.mjs" --secret-file "$run/jwt_secret" demo-user) || die "could not mint a JWT"
url="http://127.0.0.1:$http_port"
cat <<MSG

pg_sync is running.
  web app:       $url/   (sign in as any user name; open a second browser profile as another device)
  sync:          $url/sync/pull   $url/sync/push
  database:      psql -h $PGHOST -p $PGPORT -U postgres postgres
                 (or psql postgres://postgres@127.0.0.1:$PGPORT/postgres)
  a JWT for "demo-user" (24 h):
    $token
  a JWT for any user:   make token USER=alice
  pull:
    curl -s -X POST $url/sync/pull -H "Authorization: Bearer $token" -d '{"lastPulledAt": null}'
Press Ctrl-C to stop (PostgreSQL too).
MSG

# Supervise: a crash of the sync server is reported and the server restarted; PostgreSQL keeps
# running. Ctrl-C ends the wait through the trap.
while :; do
  wait "$fn_pid"; status=$?
  [ -n "$stopping" ] && break
  # Ctrl-C reached the server (and this script, unless it was started where SIGINT is ignored)
  [ "$status" = 130 ] && exit 0
  describe_exit "$status"
  say "make run: the sync server (pid $fn_pid) $why; PostgreSQL is still running on port $port. Restarting the sync server." >&2
  fn_pid=""
  if ! start_server; then
    say "make run: the sync server could not be restarted; stopping PostgreSQL" >&2
    exit 1
  fi
  say "make run: the sync server is back on $url/" >&2
done
