#!/usr/bin/env bash
# Scale benchmark: 10,000 polling devices through the edge function, in three configurations
# measured in the same run, on the same data and devices:
#   primary     the function on the primary alone
#   standby     pulls on a streaming hot standby (DATABASE_REPLICA_URL), pushes on the primary,
#               sync_checkpoint() once a second on the primary (what pg_cron would do)
#   pgbouncer   the function through PgBouncer (transaction pooling) to the primary
# DEVICES (10,000) devices of USERS (1,000) users polling every INTERVAL (10) s, PUSH_SHARE (2%) of
# requests a push of one record. One edge function per configuration; the configurations take
# turns, ROUNDS (3) times: PACED_SECS (15) at the devices' rate, then SAT_SECS (8) as fast as CONNS
# (64) connections go (test/bench/scale-load.mjs), so that other work on the machine weighs on
# all three alike. Reports requests/s, p50/p99, CPU of PostgreSQL (primary, standby), PgBouncer
# and the function, connections, checkpoints/s and how stale pulls are; writes
# test/bench/out/scale.md and scale.json (and the servers' logs).
#
#   test/bench/scale.sh          (make bench-scale)     about 4 minutes
#   QUICK=1 test/bench/scale.sh  a smoke run (1,000 devices, one short round)
# Ports from SCALE_BENCH_PORT (56150): primary, standby, PgBouncer, then the three functions.
# Loopback only. Needs pg_sync installed for PG_CONFIG (pg_config on PATH), Debian's pgbouncer,
# node and npm (autocannon and Deno come from test/bench's package.json).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$here/out
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
base=${SCALE_BENCH_PORT:-56150}
pport=$base sport=$((base + 1)) bport=$((base + 2)) hport=$((base + 3))
if [ "${QUICK:-0}" = 1 ]; then
  : "${DEVICES:=1000}" "${USERS:=100}" "${PACED_SECS:=4}" "${SAT_SECS:=3}" "${ROUNDS:=1}"
fi
export DEVICES=${DEVICES:-10000} USERS=${USERS:-1000} INTERVAL=${INTERVAL:-10} PUSH_SHARE=${PUSH_SHARE:-0.02}
export PACED_SECS=${PACED_SECS:-15} SAT_SECS=${SAT_SECS:-8} CONNS=${CONNS:-64} ROUNDS=${ROUNDS:-3}
pool=${DB_POOL_SIZE:-16} bouncer_pool=${BOUNCER_POOL:-8} rows=${ROWS_PER_USER:-20}
pgbouncer_bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
[ -x "$pgbouncer_bin" ] || { echo "pgbouncer is required (apt-get install pgbouncer)" >&2; exit 2; }
[ -x "$here/node_modules/.bin/deno" ] && [ -d "$here/node_modules/autocannon" ] ||
  (cd "$here" && npm install --no-audit --no-fund --silent)
deno=$here/node_modules/.bin/deno

. "$root/test/as-pg.sh"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
work=$(mktemp -d /tmp/pg_sync_scale.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
fn_pid="" ticker_pid="" bouncer_pid=""
cleanup() {
  local rc=$?
  set +e
  [ -n "$ticker_pid" ] && kill "$ticker_pid" 2>/dev/null
  [ -n "$fn_pid" ] && kill $fn_pid 2>/dev/null && wait $fn_pid 2>/dev/null
  [ -n "$bouncer_pid" ] && kill "${bouncer_real:-$bouncer_pid}" 2>/dev/null
  "$root/test/scale/topology.sh" stop "$work"
  mkdir -p "$out" && cp "$work"/*.log "$out/" 2>/dev/null
  [ "${BENCH_KEEP:-0}" = 1 ] && echo "kept: $work" || rm -rf "$work"
  [ "$rc" != 0 ] && echo "scale benchmark FAILED (exit $rc); logs in $out" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "topology: primary :$pport, hot standby :$sport, PgBouncer :$bport, function :$hport ($work)"
export TOPOLOGY_CONF="shared_buffers = 256MB
max_connections = 200
fsync = on
synchronous_commit = on
jit = off"
eval "$(PG_CONFIG=$PG_CONFIG "$root/test/scale/topology.sh" start "$work" "$pport" "$sport")"
P=(-h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -d postgres)
S=(-h "$STANDBY_HOST" -p "$STANDBY_PORT" -U postgres -d postgres)
psql_() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

log "data: $USERS users x $rows tasks"
psql_ "${P[@]}" >/dev/null <<SQL
CREATE EXTENSION pg_sync;
CREATE ROLE authenticated NOLOGIN;
CREATE TABLE tasks (
    id text PRIMARY KEY, owner_id text NOT NULL, title text, is_done boolean,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
SELECT sync_register_table('tasks', owner_column => 'owner_id');
GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO authenticated;
INSERT INTO tasks (id, owner_id, title, is_done)
SELECT format('u%s-t%s', u, t), format('user%s', lpad(u::text, 5, '0')), format('task %s', t), t % 3 = 0
  FROM generate_series(0, $USERS - 1) u, generate_series(1, $rows) t;
VACUUM ANALYZE tasks;
SELECT sync_checkpoint();
SQL

# PgBouncer in transaction pooling mode (the settings README's PgBouncer section gives)
cat >"$work/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$pport
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $work/pgbouncer.users
pool_mode = transaction
default_pool_size = $bouncer_pool
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
logfile = $work/pgbouncer.log
INI
echo '"postgres" ""' >"$work/pgbouncer.users"
[ "$(id -u)" = 0 ] && chown postgres: "$work/pgbouncer.ini" "$work/pgbouncer.users"
if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$pgbouncer_bin" "$work/pgbouncer.ini" >/dev/null 2>&1 &
else "$pgbouncer_bin" "$work/pgbouncer.ini" >/dev/null 2>&1 & fi
bouncer_pid=$!
for _ in $(seq 1 100); do psql_ -h 127.0.0.1 -p "$bport" -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
bouncer_real=$(pgrep -n -f "^$pgbouncer_bin $work/pgbouncer.ini" || echo "$bouncer_pid")

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
fn_pids=()
start_function() { # PORT, then the database environment
  local port=$1; shift
  (cd "$root/examples/supabase/functions/sync" && exec env "$@" JWT_SECRET="$secret" PORT="$port" HOST=127.0.0.1 \
     DB_POOL_SIZE="$pool" NO_COLOR=1 "$deno" run --quiet --allow-net --allow-env --allow-read --allow-write=. --allow-sys index.ts) \
     >>"$work/function.log" 2>&1 &
  fn_pids+=($!)
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/sync/pull")" = 401 ] && return 0
    sleep 0.1
  done
  echo "the function did not start" >&2; cat "$work/function.log" >&2; exit 1
}
primary_pid=$(head -1 "$work/primary/postmaster.pid")
standby_pid=$(head -1 "$work/standby/postmaster.pid")
# one edge function per configuration, measured in turns
start_function "$hport" DATABASE_URL="postgres://postgres@127.0.0.1:$pport/postgres"
start_function $((hport + 1)) DATABASE_URL="postgres://postgres@127.0.0.1:$pport/postgres" \
  DATABASE_REPLICA_URL="postgres://postgres@127.0.0.1:$sport/postgres"
start_function $((hport + 2)) DATABASE_URL="postgres://postgres@127.0.0.1:$bport/postgres"
fn_pid="${fn_pids[*]}"
url() { echo "http://127.0.0.1:$1/sync"; }
configs=$(cat <<JSON
[{"name": "primary", "url": "$(url "$hport")", "pids": {"primary": $primary_pid, "function": ${fn_pids[0]}}},
 {"name": "standby", "url": "$(url $((hport + 1)))", "ticker": true,
  "pids": {"primary": $primary_pid, "standby": $standby_pid, "function": ${fn_pids[1]}},
  "psqlStandby": "-h $STANDBY_HOST -p $STANDBY_PORT -U postgres -d postgres"},
 {"name": "pgbouncer", "url": "$(url $((hport + 2)))", "pids": {"primary": $primary_pid, "pgbouncer": $bouncer_real, "function": ${fn_pids[2]}}}]
JSON
)
log "$ROUNDS rounds of the three configurations in turns: ${PACED_SECS}s paced at $((DEVICES / INTERVAL)) req/s, then ${SAT_SECS}s saturation"
psql_ "${P[@]}" -c "CHECKPOINT" >/dev/null
PSQL="$bindir/psql" node "$here/scale-load.mjs" --secret "$secret" \
  --psql-primary "-h $PRIMARY_HOST -p $PRIMARY_PORT -U postgres -d postgres" --configs "$configs" >"$work/results.jsonl"
results=()
while IFS= read -r line; do
  name=$(node -e 'console.log(JSON.parse(process.argv[1]).name)' "$line")
  echo "$line" >"$work/$name.json"
  results+=("$work/$name.json")
done <"$work/results.jsonl"

mkdir -p "$out"
node "$here/scale-report.mjs" "${results[@]}" >"$out/scale.md"
node -e 'console.log(JSON.stringify(process.argv.slice(1).map((f) => JSON.parse(require("fs").readFileSync(f))), null, 1))' "${results[@]}" >"$out/scale.json"
{
  echo
  echo "- host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- PostgreSQL $(psql_ "${P[@]}" -c 'SHOW server_version'), $("$pgbouncer_bin" --version | head -1), Deno $("$deno" --version | head -1 | cut -d' ' -f2); function pool $pool connections, PgBouncer pool $bouncer_pool"
  echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), source $(git -C "$root" rev-parse --short HEAD)"
} >>"$out/scale.md"
cat "$out/scale.md"
