#!/usr/bin/env bash
# pg_sync benchmark harness.
#
#   test/bench/run.sh            full run (about 10 minutes on 2 cores)
#   QUICK=1 test/bench/run.sh    smoke run with small sizes (about 1.5 minutes)
#   CASES="pull push" test/bench/run.sh   only the cases named (see CASES below)
#
# Starts a PostgreSQL cluster of its own (port BENCH_PORT, default 54335, in a
# directory under /tmp, running as the postgres user when started as root),
# loads deterministic data, measures pg_sync against the physical limit
# (plain SQL) and a hand-written PL/pgSQL sync on the same rows, prints one
# results table and writes it to test/bench/out/results.md (raw pgbench
# output and the server log go to test/bench/out/ too). The cluster is
# stopped and removed on exit, also on failure or interrupt; BENCH_KEEP=1
# keeps its directory. The extension must be installed first
# (make && make install).
#
# Sizes and durations can be overridden from the environment: USERS,
# PER_USER, HEAVY, REPS_FIRST, REPS_INCR, REPS_EMPTY, REPS_PUSH1K,
# REPS_PUSH10K, REPS_PUSH_DEVICE, INTERLEAVE_USERS (users whose changes the interleaved-layout
# incremental pulls interleave), SMALL_CHANGED (rows changed for the small
# incremental pull, default 10), WRITE_SECS, WRITE_ROUNDS, WRITE_CLIENTS, MIXED_SECS,
# MIXED_CLIENTS, MIXED_TOKEN_AGE_MS (the mixed load's pulls use tokens between
# this and twice this old; 0: every pull uses the token of the client's
# previous pull), REPS_CONFLICT1K, REPS_CONFLICT10K (repetitions of the
# conflicting pushes, per policy), CF_ROWS (rows of each conflict-policy table).
#
# CASES: the cases to run, a space-separated subset of
#   pull push memory write mixed http conflicts
# (default: all). The data is loaded in full either way; the report lists
# the cases that ran.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$here/out
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
port=${BENCH_PORT:-54335}
quick=${QUICK:-0}

if [ "$quick" = 1 ]; then
  : "${USERS:=500}" "${PER_USER:=100}" "${HEAVY:=40000}"
  : "${REPS_FIRST:=3}" "${REPS_INCR:=5}" "${REPS_EMPTY:=20}" "${REPS_PUSH1K:=3}" "${REPS_PUSH10K:=1}" "${REPS_PUSH_DEVICE:=5}"
  : "${REPS_CONFLICT1K:=2}" "${REPS_CONFLICT10K:=1}"
  : "${WRITE_SECS:=3}" "${WRITE_ROUNDS:=1}" "${MIXED_SECS:=10}"
else
  : "${USERS:=10000}" "${PER_USER:=100}" "${HEAVY:=100000}"
  : "${REPS_FIRST:=9}" "${REPS_INCR:=50}" "${REPS_EMPTY:=200}" "${REPS_PUSH1K:=15}" "${REPS_PUSH10K:=7}" "${REPS_PUSH_DEVICE:=20}"
  : "${REPS_CONFLICT1K:=5}" "${REPS_CONFLICT10K:=3}"
  : "${WRITE_SECS:=10}" "${WRITE_ROUNDS:=3}" "${MIXED_SECS:=60}"
fi
: "${INTERLEAVE_USERS:=50}" "${SMALL_CHANGED:=10}" "${WRITE_CLIENTS:=8}" "${MIXED_CLIENTS:=16}" "${MIXED_TOKEN_AGE_MS:=1000}" "${CF_ROWS:=10000}"
: "${CASES:=pull push memory write mixed http conflicts}"
for c in $CASES; do
  case $c in
    pull | push | memory | write | mixed | http | conflicts) ;;
    *) echo "unknown case \"$c\" in CASES (known: pull push memory write mixed http conflicts)" >&2; exit 2 ;;
  esac
done
want() { [[ " $CASES " == *" $1 "* ]]; }
if [ "$PER_USER" -lt 4 ] || [ "$USERS" -lt "$MIXED_CLIENTS" ] || [ "$USERS" -lt "$INTERLEAVE_USERS" ]; then
  echo "PER_USER must be >= 4 and USERS >= MIXED_CLIENTS ($MIXED_CLIENTS) and INTERLEAVE_USERS ($INTERLEAVE_USERS)" >&2
  exit 2
fi

. "$here/cluster-lib.sh"
# cluster settings: bench_settings (cluster-lib.sh) with checkpoints every
# 15 minutes and autovacuum on
settings=("${bench_settings[@]}" "checkpoint_timeout = 15min" "autovacuum = on")

ext_so="$("$PG_CONFIG" --pkglibdir)/pg_sync.so"
ext_ctl="$("$PG_CONFIG" --sharedir)/extension/pg_sync.control"
if [ ! -f "$ext_so" ] || [ ! -f "$ext_ctl" ]; then
  echo "pg_sync is not installed for $("$PG_CONFIG" --version): run make && make install" >&2
  exit 2
fi

so_sum() { md5sum "$ext_so" | cut -c1-12; }
so_start=$(so_sum)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$out"
rm -f "$out"/results.md "$out"/mixed_log* "$out"/*.txt
fn_pid=""
bench_on_exit() { [ -n "$fn_pid" ] && kill "$fn_pid" 2>/dev/null; }
bench_workdir pg_sync_bench
t_start=$(date +%s)
bench_start 127.0.0.1

machine() {
  bench_describe_host
  echo "- pg_sync: $(sql "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_sync'"), $ext_so (md5 $so_start…, $(date -u -r "$ext_so" '+%Y-%m-%d %H:%M UTC'))"
  echo "- source: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- extension 2>/dev/null || echo ' (extension/ has uncommitted changes)')"
  echo "- mode: $([ "$quick" = 1 ] && echo 'QUICK (smoke sizes)' || echo full)$([ "$CASES" = "pull push memory write mixed http conflicts" ] || echo "; cases: $CASES")"
  echo "- load average (1/5/15 min) before the run: $load_start (other work on the machine skews the results)"
  echo "- data: $USERS users x $PER_USER rows + user \"heavy\" with $HEAVY rows ($((USERS * PER_USER + HEAVY)) rows per table copy)"
  bench_describe_settings
  echo "- pg_sync.checkpoint_interval: $(sql "LOAD 'pg_sync'; SHOW pg_sync.checkpoint_interval"), pg_sync.durable_checkpoints: $(sql "LOAD 'pg_sync'; SHOW pg_sync.durable_checkpoints") (defaults)"
}
log "settings:"
machine | sed 's/^/    /'

log "loading data"
psql_ -v users="$USERS" -v per_user="$PER_USER" -v heavy="$HEAVY" -f "$here/sql/schema.sql"
psql_ -f "$here/sql/baseline.sql"
psql_ -f "$here/sql/cases.sql"
psql_ -f "$here/sql/mixed.sql"
psql_ -f "$here/sql/app.sql"
psql_ -v cf_rows="$CF_ROWS" -f "$here/sql/conflicts.sql"
sql "VACUUM (ANALYZE) notes, notes_raw, notes_pl, _pg_sync.row_meta, _pg_sync.checkpoints, bench.heavy_pool" >/dev/null
sql "CHECKPOINT" >/dev/null
log "loaded: $(sql "SELECT format('notes %s rows, row_meta %s rows, database %s',
      (SELECT count(*) FROM notes), (SELECT count(*) FROM _pg_sync.row_meta),
      pg_size_pretty(pg_database_size(current_database())))")"

if want pull; then
  log "case: first pull of one user's $HEAVY rows ($REPS_FIRST reps)"
  sql "CALL bench.case_first_pull($REPS_FIRST)"
  log "case: incremental pull, $PER_USER changed rows written together ($REPS_INCR reps x 2 variants)"
  sql "CALL bench.case_pull_since('incr_write', $REPS_INCR, $PER_USER, false, 1)"
  sql "CALL bench.case_pull_since('incr_reuse', $REPS_INCR, $PER_USER, true, 2)"
  log "case: incremental pull, $SMALL_CHANGED changed rows ($REPS_INCR reps)"
  sql "CALL bench.case_pull_since('incr_small', $REPS_INCR, $SMALL_CHANGED, true, 7)"
  log "case: empty pull ($REPS_EMPTY reps x 2 variants)"
  sql "CALL bench.case_pull_since('empty_write', $REPS_EMPTY, 0, false, 3)"
  sql "CALL bench.case_pull_since('empty_reuse', $REPS_EMPTY, 0, true, 4)"
  # the same incremental pulls with the changed rows spread over the table:
  # INTERLEAVE_USERS users (the pulling one among them) change one row each
  # in turn; run last, since they change many rows, and vacuumed after
  log "case: incremental pull, owners interleaved ($INTERLEAVE_USERS users' changes, $REPS_INCR reps x 2 variants)"
  sql "CALL bench.case_pull_since('incr_write_interleaved', $REPS_INCR, $PER_USER, false, 5, $INTERLEAVE_USERS)"
  sql "CALL bench.case_pull_since('incr_reuse_interleaved', $REPS_INCR, $PER_USER, true, 6, $INTERLEAVE_USERS)"
  sql "VACUUM (ANALYZE) notes, notes_raw, notes_pl, _pg_sync.row_meta" >/dev/null
fi
if want push; then
  log "case: push of 1,000 records ($REPS_PUSH1K reps)"
  sql "CALL bench.case_push('push_1k', 1000, $REPS_PUSH1K)"
  log "case: push of 10,000 records ($REPS_PUSH10K reps)"
  sql "CALL bench.case_push('push_10k', 10000, $REPS_PUSH10K)"
  log "case: push of 1,000 records naming the device and not ($REPS_PUSH_DEVICE reps)"
  sql "VACUUM (ANALYZE) _pg_sync.row_meta" >/dev/null
  sql "CALL bench.case_push_device('push_device', 1000, $REPS_PUSH_DEVICE)"
fi

# Pushes of conflicting records under each conflict policy (sql/conflicts.sql).
# The variants' tables exist only during this case: registered tables are
# part of every pull. Both sizes run in one session; in QUICK mode the
# 10,000-record pushes get no warm-up round of their own (the 1,000-record
# rounds before them warm the session).
if want conflicts; then
  log "case: push of 1,000 and 10,000 conflicting records under each conflict policy ($REPS_CONFLICT1K and $REPS_CONFLICT10K reps)"
  sql "SELECT bench.cf_setup()" >/dev/null
  sql "VACUUM (ANALYZE) $(sql "SELECT string_agg(bench.cf_table(name), ', ' ORDER BY ord) FROM bench.cf_variant")" >/dev/null
  sql "ANALYZE _pg_sync.row_meta" >/dev/null
  psql_ -c "CALL bench.case_conflicts('conflict_1k', 1000, $REPS_CONFLICT1K)" \
        -c "CALL bench.case_conflicts('conflict_10k', 10000, $REPS_CONFLICT10K, warmup => $([ "$quick" = 1 ] && echo false || echo true))"
  sql "SELECT bench.cf_teardown()" >/dev/null
  sql "VACUUM (ANALYZE) _pg_sync.row_meta, _pg_sync.conflicts" >/dev/null
fi

# Backend memory of one 10,000-record push, each implementation in a fresh
# backend warmed by a 100-record push: VmHWM is reset (clear_refs) right
# before the push; RssAnon (private memory) is also sampled from outside.
mem_run() {
  local impl=$1 call=$2 pidf=$work/mem_$1.pid flag=$work/mem_$1.go
  local peak=0 base=0 k v rest bpid
  rm -f "$pidf" "$flag"
  psql_ -At >"$work/mem_$impl.out" <<SQL &
SELECT pg_backend_pid() AS bpid \gset
\o $pidf
\qecho :bpid
\o
-- warm-up: plans, caches, library
SELECT sync_checkpoint() AS tok, bench.epoch_ms(clock_timestamp()) AS ms \gset
BEGIN;
SELECT set_config('request.jwt.claims', bench.claims('heavy'), true);
$(printf "$call" "'$impl-100'")
COMMIT;
SELECT sync_checkpoint() AS tok, bench.epoch_ms(clock_timestamp()) AS ms \gset
\o $flag
\qecho go
\o
SELECT pg_sleep(0.3);
SELECT bench.mem_reset();
SELECT bench.mem_status() AS before \gset
BEGIN;
SELECT set_config('request.jwt.claims', bench.claims('heavy'), true);
$(printf "$call" "'$impl-10000'")
COMMIT;
SELECT bench.mem_status() AS after \gset
INSERT INTO bench.metric
SELECT 'push_10k_mem', '$impl', k, v, NULL
  FROM (VALUES ('rss_before_kb', (:'before'::jsonb ->> 'VmRSS')::float8),
               ('hwm_kb', (:'after'::jsonb ->> 'VmHWM')::float8),
               ('shmem_growth_kb', (:'after'::jsonb ->> 'RssShmem')::float8 - (:'before'::jsonb ->> 'RssShmem')::float8),
               ('anon_before_kb', (:'before'::jsonb ->> 'RssAnon')::float8)) AS m(k, v);
SQL
  local job=$!
  while [ ! -s "$flag" ] && kill -0 "$job" 2>/dev/null; do sleep 0.01; done
  bpid=$(cat "$pidf" 2>/dev/null || true)
  if [ -n "$bpid" ]; then
    while [ -r "/proc/$bpid/status" ] && kill -0 "$job" 2>/dev/null; do
      while read -r k v rest; do
        if [ "$k" = RssAnon: ]; then
          [ "$base" = 0 ] && base=$v
          [ "$v" -gt "$peak" ] && peak=$v
          break
        fi
      done <"/proc/$bpid/status" 2>/dev/null || true
    done
  fi
  wait "$job"
  sql "INSERT INTO bench.metric VALUES ('push_10k_mem', '$impl', 'anon_peak_kb', $peak, NULL),
                                       ('push_10k_mem', '$impl', 'anon_idle_kb', $base, NULL)"
}
if want memory; then
  log "case: backend memory of a 10,000-record push"
  sql "INSERT INTO bench.docs
       SELECT format('%s-%s', i, n), bench.push_doc(n, bench.take_slice(n), format('m%s-%s', n, i))
         FROM (VALUES ('pg_sync'), ('limit'), ('plpgsql')) AS v(i), (VALUES (100), (10000)) AS s(n)" >/dev/null
  mem_run pg_sync "SELECT octet_length(sync_push(doc::json, :tok)::text) FROM bench.docs WHERE name = %s;"
  mem_run limit "SELECT bench.limit_push(doc) FROM bench.docs WHERE name = %s;"
  mem_run plpgsql "SELECT bench.push(doc::jsonb, :ms) FROM bench.docs WHERE name = %s;"
fi

# Write overhead: single-row INSERT / UPDATE transactions through pgbench on
# the registered table, the untracked copy and the PL/pgSQL baseline's table;
# then an app's transaction on two tables (pgbench/app.sql), registered
# (notes, tasks) and unregistered (notes_raw, tasks_raw).
for op in insert update; do
  for t in notes notes_raw notes_pl; do
    sed "s/@TABLE@/$t/g" "$here/pgbench/$op.sql" >"$work/scripts/${op}_$t.sql"
  done
done
sed "s/@NOTES@/notes/g; s/@TASKS@/tasks/g" "$here/pgbench/app.sql" >"$work/scripts/app_registered.sql"
sed "s/@NOTES@/notes_raw/g; s/@TASKS@/tasks_raw/g" "$here/pgbench/app.sql" >"$work/scripts/app_unregistered.sql"
task_notes=$((PER_USER < 10 ? PER_USER : 10))
tasks_per_note=3
pgb_tps() { sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$1"; }
# one pgbench run of a write-overhead script: write_run <case> <impl> <round> <script> [<PGOPTIONS>]
# (impls ending in _sqlcap: the registered table with pg_sync.direct_capture off, i.e.
# the change records written by the SQL upsert, for a same-run comparison)
sqlcap="-c pg_sync.direct_capture=off"
write_run() {
  local f=$out/$1_$2_$3.txt tps lat
  PGOPTIONS="${5:-}" "$bindir/pgbench" -n -M prepared -c "$WRITE_CLIENTS" -j 2 -T "$WRITE_SECS" \
    -D users="$USERS" -D per_user="$PER_USER" -D heavy="$HEAVY" \
    -D task_notes="$task_notes" -D tasks_per_note="$tasks_per_note" \
    -f "$4" >"$f" 2>&1
  tps=$(pgb_tps "$f")
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$f")
  if [ -z "$tps" ] || [ -z "$lat" ] || grep -q 'aborted' "$f"; then
    cat "$f" >&2
    echo "write-overhead run failed: $f" >&2
    exit 1
  fi
  sql "INSERT INTO bench.metric VALUES ('$1', '$2', 'tps', $tps, 'round $3'),
                                       ('$1', '$2', 'lat_ms', $lat, 'round $3')"
}
if want write; then
  log "case: write overhead (pgbench, $WRITE_CLIENTS clients, ${WRITE_SECS}s x $WRITE_ROUNDS rounds per table and statement)"
  for op in insert update; do
    for round in $(seq 1 "$WRITE_ROUNDS"); do
      for t in notes_raw notes notes_sqlcap notes_pl; do
        if [ $t = notes_sqlcap ]; then
          write_run "write_$op" "$t" "$round" "$work/scripts/${op}_notes.sql" "$sqlcap"
        else
          write_run "write_$op" "$t" "$round" "$work/scripts/${op}_$t.sql"
        fi
      done
    done
  done
  log "case: write overhead of an app transaction on two tables (pgbench, $WRITE_CLIENTS clients, ${WRITE_SECS}s x $WRITE_ROUNDS rounds per variant)"
  sql "SELECT bench.app_setup($task_notes, $tasks_per_note)" >/dev/null
  sql "VACUUM (ANALYZE) tasks, tasks_raw, _pg_sync.row_meta" >/dev/null
  for round in $(seq 1 "$WRITE_ROUNDS"); do
    for t in unregistered registered registered_sqlcap; do
      if [ $t = registered_sqlcap ]; then
        write_run write_app "$t" "$round" "$work/scripts/app_registered.sql" "$sqlcap"
      else
        write_run write_app "$t" "$round" "$work/scripts/app_$t.sql"
      fi
    done
  done
  sql "SELECT bench.app_teardown()" >/dev/null
  sql "VACUUM (ANALYZE) notes, notes_raw, notes_pl, _pg_sync.row_meta, _pg_sync.checkpoints" >/dev/null
fi

# Mixed load: MIXED_CLIENTS clients, 90% pulls / 10% pushes of 10 records;
# run twice: calls that name no device, then calls that name their device
# (client_id: every pull and push is recorded per device).
run_mixed() {
  local name=$1 named=$2
  log "case: $name (pgbench, $MIXED_CLIENTS clients, ${MIXED_SECS}s, tokens ${MIXED_TOKEN_AGE_MS}-$((2 * MIXED_TOKEN_AGE_MS)) ms old, devices named: $named)"
  local tok ckpt_before ckpt_after errs_before errs_after failed rc
  tok=$(sql "SELECT sync_checkpoint()")
  ckpt_before=$(sql "SELECT count(*) FROM _pg_sync.checkpoints")
  errs_before=$(grep -c 'ERROR' "$work/server.log" || true)
  set +e
  (cd "$work" && "$bindir/pgbench" -n -M prepared -c "$MIXED_CLIENTS" -j 2 -T "$MIXED_SECS" -r -P 10 \
    -l --log-prefix="$name" \
    -D tok="$tok" -D pend="$tok" -D pend_ms=0 -D token_age_ms="$MIXED_TOKEN_AGE_MS" \
    -D clients="$MIXED_CLIENTS" -D upc=$((USERS / MIXED_CLIENTS)) -D pushes=0 -D named="$named" \
    -f "$here/pgbench/mixed_pull.sql@9" -f "$here/pgbench/mixed_push.sql@1" \
    >"$out/$name.txt" 2>&1)
  rc=$?
  set -e
  errs_after=$(grep -c 'ERROR' "$work/server.log" || true)
  ckpt_after=$(sql "SELECT count(*) FROM _pg_sync.checkpoints")
  # per-transaction log: client, transaction, latency (us), script, epoch s, us
  awk -v c="$name" '{print c "," $4 "," $3}' "$work"/"$name".[0-9]* >"$work/${name}_latencies.csv"
  psql_ -c "\\copy bench.mixed_log FROM '$work/${name}_latencies.csv' WITH (FORMAT csv)"
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out/$name.txt")
  sql "INSERT INTO bench.metric VALUES
         ('$name', 'pg_sync', 'tps', $(pgb_tps "$out/$name.txt" | grep . || echo 'NULL'), NULL),
         ('$name', 'pg_sync', 'pgbench_rc', $rc, NULL),
         ('$name', 'pg_sync', 'failed', ${failed:-NULL}, NULL),
         ('$name', 'pg_sync', 'server_errors', $((errs_after - errs_before)), NULL),
         ('$name', 'pg_sync', 'checkpoints', $((ckpt_after - ckpt_before)), NULL),
         ('$name', 'pg_sync', 'secs', $MIXED_SECS, NULL),
         ('$name', 'pg_sync', 'token_age_ms', $MIXED_TOKEN_AGE_MS, NULL)"
  [ "$rc" = 0 ] || mixed_rc=$rc
}
psql_ -c "CREATE TABLE bench.mixed_log (run text, script int, us bigint)"
mixed_rc=0
if want mixed; then
  run_mixed mixed 0
  run_mixed mixed_named 1
fi

# End to end: empty pulls through the edge function (Deno), HTTP_CONNS
# connections with autocannon; the same server's no-database route (an
# unknown path, answered 404 before any database work) is the HTTP ceiling.
: "${HTTP_CONNS:=32}" "${HTTP_SECS:=$([ "$quick" = 1 ] && echo 5 || echo 20)}" "${HTTP_PORT:=8799}"
if want http; then
  log "case: end to end via the edge function (autocannon, $HTTP_CONNS connections, ${HTTP_SECS}s)"
  [ -x "$here/node_modules/.bin/autocannon" ] && [ -x "$here/node_modules/.bin/deno" ] ||
    (cd "$here" && npm install --no-audit --no-fund --silent)
  sql "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF; END \$\$;
       GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO authenticated;" >/dev/null
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  fn_dir=$root/examples/supabase/functions/sync
  (cd "$fn_dir" && DATABASE_URL="postgres://postgres@127.0.0.1:$port/bench" JWT_SECRET=$secret \
     PORT=$HTTP_PORT DB_POOL_SIZE=${HTTP_POOL:-8} NO_COLOR=1 \
     exec "$here/node_modules/.bin/deno" run --quiet --allow-net --allow-env --allow-read --allow-write=. --allow-sys index.ts) \
     >"$out/edge_function.log" 2>&1 &
  fn_pid=$!
  for _ in $(seq 1 120); do
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && break
    sleep 0.5
  done
  printf '%s\n' "$secret" >"$work/jwt_secret"
  jwt=$(node "$root/examples/dev/token.mjs" --secret-file "$work/jwt_secret" u00001)
  http_resp=$(curl -s -X POST "http://127.0.0.1:$HTTP_PORT/sync/pull" -H "authorization: Bearer $jwt" \
               -d '{"lastPulledAt": null}')
  http_tok=$(sed -n 's/.*"timestamp":\([0-9]*\)}$/\1/p' <<<"$http_resp")
  [ -n "$http_tok" ] || { echo "edge function pull failed: ${http_resp:0:300}" >&2; cat "$out/edge_function.log" >&2; exit 1; }
  ac() {
    "$here/node_modules/.bin/autocannon" -j -c "$HTTP_CONNS" -d "$HTTP_SECS" -m POST \
      -H "authorization=Bearer $jwt" -H "content-type=application/json" -b "$2" "http://127.0.0.1:$HTTP_PORT$1" \
      >"$out/autocannon_$3.json" 2>/dev/null
    node -e 'const r = require(process.argv[1]);
             console.log([r.requests.average, r.latency.p50, r.latency.p99, r.non2xx, r.errors].join(" "))' "$out/autocannon_$3.json"
  }
  read -r rps p50 p99 non2xx errs <<<"$(ac /sync/pull "{\"lastPulledAt\": $http_tok}" pull)"
  read -r c_rps c_p50 c_p99 c_non2xx c_errs <<<"$(ac /nothing '{}' ceiling)"
  kill "$fn_pid" 2>/dev/null; wait "$fn_pid" 2>/dev/null || true
  fn_pid=""
  sql "INSERT INTO bench.metric VALUES
         ('http', 'pg_sync', 'rps', $rps, NULL), ('http', 'pg_sync', 'p50_ms', $p50, NULL),
         ('http', 'pg_sync', 'p99_ms', $p99, NULL), ('http', 'pg_sync', 'non2xx', $non2xx, NULL),
         ('http', 'pg_sync', 'errors', $errs, NULL),
         ('http', 'ceiling', 'rps', $c_rps, NULL), ('http', 'ceiling', 'p99_ms', $c_p99, NULL),
         ('http', 'pg_sync', 'conns', $HTTP_CONNS, NULL), ('http', 'pg_sync', 'secs', $HTTP_SECS, NULL)"
fi

t_end=$(date +%s)
wall=$((t_end - t_start))
log "report"
{
  echo "# pg_sync benchmark results"
  echo
  machine
  echo "- wall time of the run: $((wall / 60)) min $((wall % 60)) s"
  echo
  if [ "$(so_sum)" != "$so_start" ]; then
    echo "**Warning: $ext_so was replaced while the benchmark ran; the results may mix two builds.**"
    echo
  fi
  psql_ -At -v wall="$wall" -v clients="$MIXED_CLIENTS" -v interleave="$INTERLEAVE_USERS" -v small="$SMALL_CHANGED" -v write_clients="$WRITE_CLIENTS" -f "$here/sql/report.sql"
} >"$out/results.md"
cat "$out/results.md"
log "written: $out/results.md (wall time $((wall / 60)) min $((wall % 60)) s)"
if [ "$mixed_rc" != 0 ]; then
  echo "mixed load: pgbench exited with $mixed_rc (see $out/mixed.txt)" >&2
  exit 1
fi
