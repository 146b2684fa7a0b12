#!/usr/bin/env bash
# The main job: a local PostgreSQL with pg_sync, a demo schema and the sync
# edge function on localhost, ready for a WatermelonDB client.
# Installs what is missing (apt, npm), builds and installs pg_sync, keeps the
# cluster in ./.run (run by the "postgres" user when started as root), prints
# the URL, a dev JWT and a curl line. Ctrl-C stops everything; running it
# again reuses the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. "$root/test/ensure-deps.sh"
ensure_deps
make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
$SUDO make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null

run="$root/.run"
mkdir -p "$run/tools"
deno="$run/tools/node_modules/.bin/deno"
[ -x "$deno" ] || npm install --prefix "$run/tools" --no-audit --no-fund --silent deno@2.9.6

port=${PGSYNC_PORT:-54320}
http_port=${PGSYNC_HTTP_PORT:-8787}
export PGSYNC_LISTEN=127.0.0.1
eval "$("$root/test/cluster.sh" start "$run/pg" "$port")"
fn_pid=""
stop() {
  [ -n "$fn_pid" ] && kill "$fn_pid" 2>/dev/null && wait "$fn_pid" 2>/dev/null
  "$root/test/cluster.sh" stop "$run/pg"
  echo; echo "stopped"
}
trap stop EXIT
trap 'exit 0' INT TERM
psql -X -q -v ON_ERROR_STOP=1 -d postgres -f examples/demo.sql >/dev/null

[ -f "$run/jwt_secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$run/jwt_secret"
export JWT_SECRET DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" PORT=$http_port
JWT_SECRET=$(cat "$run/jwt_secret")
fn="$root/examples/supabase/functions/sync"
(cd "$fn" && exec "$deno" run --quiet --allow-net --allow-env --allow-read --allow-write=. --allow-sys index.ts) &
fn_pid=$!
for _ in $(seq 1 120); do
  curl -s -o /dev/null "http://127.0.0.1:$http_port/" && break
  kill -0 "$fn_pid" 2>/dev/null || { echo "the edge function did not start"; exit 1; }
  sleep 0.5
done
token=$(cd "$fn" && "$deno" run --quiet --allow-env --allow-read --allow-write=. dev_token.ts demo-user)

cat <<MSG

pg_sync is running.
  sync endpoint:  http://127.0.0.1:$http_port/sync/pull   http://127.0.0.1:$http_port/sync/push
  database:       psql -h $PGHOST -p $PGPORT -U postgres postgres
  JWT secret:     $JWT_SECRET
  dev JWT (user "demo-user", 24 h):
    $token
  pull:
    curl -s -X POST http://127.0.0.1:$http_port/sync/pull -H "Authorization: Bearer $token" -d '{"lastPulledAt": null}'
Press Ctrl-C to stop.
MSG
wait "$fn_pid"
