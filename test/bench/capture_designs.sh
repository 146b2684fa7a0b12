#!/usr/bin/env bash
# Change-record designs compared: the write cost (and what it implies for
# pulls and storage) of the candidate ways to record changes, side by side
# in one run on one cluster.
#
#   test/bench/capture_designs.sh           default sizes (10,000 users x 100 rows); seven designs take 10-11 minutes on 2 cores
#   QUICK=1 test/bench/capture_designs.sh   smoke run with small sizes, about 5 minutes
#
# Needs PostgreSQL 15's server binaries (PGBIN, default
# /usr/lib/postgresql/15/bin) and its contrib modules pg_prewarm,
# pgstattuple and insert_username. Most designs are plain SQL / PL/pgSQL
# emulations of the storage they write (sql/capture_designs.sql); four are
# written in C: bx is pg_sync itself (installed with make install), dc, dk
# and hs use triggers of the benchmark's own module capture_c/ (built and
# installed here with PGBIN's pg_config: run as root, or as the owner of
# its lib directory). Starts a cluster of its own (port
# CAPTURE_BENCH_PORT, default 54392, in a directory under /tmp, running as
# postgres when started as root), stopped and removed on exit
# (BENCH_KEEP=1 keeps the directory). Prints the results and writes them to
# test/bench/out/capture_designs.md; the raw pgbench output goes to
# test/bench/out/capture_designs/.
#
# Phases:
#   (autovacuum is off; VACUUM (ANALYZE) runs between the phases)
#   1. load: every design gets its own copy of the same rows and its own
#      tracking tables, filled as if every row had been written after
#      registration; VACUUM (ANALYZE), CHECKPOINT
#   2. writes: ROUNDS rounds; in each, single-row INSERTs, then single-row
#      UPDATEs, every design for WRITE_SECS seconds (pgbench -M prepared,
#      CLIENTS clients, -j 2), designs in an order that rotates from round
#      to round; every run starts with a CHECKPOINT and pg_prewarm of the
#      design's relations
#   3. growth: VACUUM, then GROWTH_UPDATES single-row UPDATEs per design,
#      the same rows in every design (pgbench -t with a fixed seed): sizes of
#      every relation and HOT counts before and after
#   4. pulls: a token (pg_current_snapshot()), then HEAVY_CHANGED rows of
#      "heavy" and USER_CHANGED rows of one ordinary user updated PULL_EDITS
#      times each, one transaction per update, in every design; the query
#      that finds the changed ids since the token, PULL_REPS times
#
# Variables: USERS, PER_USER, HEAVY (rows of the user "heavy"), NOTES_INDEX
# (columns of the user tables' secondary index, default "owner,
# updated_at"), DESIGNS (default "a b bx c cw d dc dk e f g h ht hc hs"; a is
# always run),
# WRITE_SECS, ROUNDS, CLIENTS, GROWTH_UPDATES, HEAVY_CHANGED, USER_CHANGED,
# PULL_EDITS, PULL_REPS.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$here/out
raw=$out/capture_designs
bindir=${PGBIN:-/usr/lib/postgresql/15/bin}
port=${CAPTURE_BENCH_PORT:-54392}
quick=${QUICK:-0}

if [ "$quick" = 1 ]; then
  : "${USERS:=500}" "${PER_USER:=100}" "${HEAVY:=20000}"
  : "${WRITE_SECS:=3}" "${ROUNDS:=3}" "${GROWTH_UPDATES:=2000}" "${PULL_REPS:=10}"
else
  : "${USERS:=10000}" "${PER_USER:=100}" "${HEAVY:=100000}"
  : "${WRITE_SECS:=10}" "${ROUNDS:=3}" "${GROWTH_UPDATES:=10000}" "${PULL_REPS:=30}"
fi
: "${CLIENTS:=8}" "${HEAVY_CHANGED:=100}" "${USER_CHANGED:=10}" "${PULL_EDITS:=2}"
: "${NOTES_INDEX:=owner, updated_at}" "${DESIGNS:=a b bx c cw d dc dk e f g h ht hc hs}"

designs=(a)
for d in $DESIGNS; do
  case $d in
    a) ;;
    b | bx | c | cw | d | dc | dk | e | f | g | h | ht | hc | hs) designs+=("$d") ;;
    *) echo "unknown design \"$d\" in DESIGNS (known: a b bx c cw d dc dk e f g h ht hc hs)" >&2; exit 2 ;;
  esac
done
pull_designs=()
for d in "${designs[@]}"; do
  case $d in a | f) ;; *) pull_designs+=("$d") ;; esac
done
if [ "$HEAVY" -lt "$HEAVY_CHANGED" ] || [ "$PER_USER" -lt "$USER_CHANGED" ] || [ "$ROUNDS" -lt 1 ]; then
  echo "need HEAVY >= HEAVY_CHANGED, PER_USER >= USER_CHANGED and ROUNDS >= 1" >&2
  exit 2
fi
per_client=$(((GROWTH_UPDATES + CLIENTS - 1) / CLIENTS))
GROWTH_UPDATES=$((per_client * CLIENTS))
ordinary=$(printf 'u%05d' $((42 % USERS)))

. "$here/cluster-lib.sh"

# autovacuum is off so that no run is charged with the vacuum (CPU, WAL) of
# another design's tables: each design keeps the dead tuples of its own
# writes through the timed rounds, and VACUUM (ANALYZE) runs between phases.
settings=("${bench_settings[@]}" "checkpoint_timeout = 1h" "autovacuum = off")

for b in initdb pg_ctl postgres psql pgbench pg_config; do
  [ -x "$bindir/$b" ] || { echo "$bindir/$b not found (set PGBIN)" >&2; exit 2; }
done
# the C designs: pg_sync installed; the benchmark's module built and installed
if [[ " ${designs[*]} " == *" bx "* ]] &&
   [ ! -f "$("$bindir/pg_config" --sharedir)/extension/pg_sync.control" ]; then
  echo "design bx needs pg_sync installed for $("$bindir/pg_config" --version): make install" >&2
  exit 2
fi
if [[ " ${designs[*]} " == *" dc "* || " ${designs[*]} " == *" dk "* || " ${designs[*]} " == *" hs "* ]]; then
  make -s -C "$here/capture_c" PG_CONFIG="$bindir/pg_config" >/dev/null &&
    make -s -C "$here/capture_c" PG_CONFIG="$bindir/pg_config" install >/dev/null || {
    echo "could not build and install test/bench/capture_c (designs dc, dk, hs)" >&2
    exit 2
  }
fi

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$out" "$raw"
rm -f "$out/capture_designs.md" "$raw"/*.txt
bench_logdir=$raw
bench_workdir pg_sync_designs
t_start=$(date +%s)
bench_start ''

machine() {
  bench_describe_host
  echo "- source: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- mode: $([ "$quick" = 1 ] && echo 'QUICK (smoke sizes)' || echo 'default sizes')"
  echo "- load average (1/5/15 min) before the run: $load_start; the machine is shared: only ratios within one run mean anything"
  echo "- data: $USERS users x $PER_USER rows + user \"heavy\" with $HEAVY rows ($((USERS * PER_USER + HEAVY)) rows in each design's copy); user tables: PK (id), index ($NOTES_INDEX)"
  echo "- autovacuum off; VACUUM (ANALYZE) after the load, before the growth phase and before the pulls"
  echo "- writes: pgbench -M prepared, $CLIENTS clients, -j 2, ${WRITE_SECS} s per run, $ROUNDS rounds; growth: $GROWTH_UPDATES updates; pulls: $PULL_REPS runs per query"
  bench_describe_settings
}
log "settings:"
machine | sed 's/^/    /'

# 1. load
psql_ -v users="$USERS" -v per_user="$PER_USER" -v heavy="$HEAVY" -v notes_index="$NOTES_INDEX" \
  -f "$here/sql/capture_designs.sql"
for d in "${designs[@]}"; do
  t0=$(date +%s)
  size=$(sql "SELECT cd.make_design('$d')")
  log "loaded design $d: cd.notes_$d $size ($(($(date +%s) - t0)) s)"
done
sql "DROP TABLE cd.source"
sql "VACUUM (ANALYZE)" >/dev/null
sql "CHECKPOINT"
for d in "${designs[@]}"; do
  sql "SELECT cd.snap_sizes('after load', '$d', false)" >/dev/null
  for op in insert update; do
    sql "SELECT cd.pgbench_script('$d', '$op')" >"$work/scripts/${op}_$d.sql"
  done
done
log "loaded: database $(sql "SELECT pg_size_pretty(pg_database_size(current_database()))")"

# CPU time of the client backends: the user + system time of the
# postmaster's reaped children (/proc/<pid>/stat, cutime + cstime, in clock
# ticks). A backend's time is added when the postmaster reaps it, so
# quiet_backends waits until the postmaster has no children but the
# processes it had when no session was open (checkpointer, WAL writer...).
pm=$(head -1 "$data/postmaster.pid")
clk_tck=$(getconf CLK_TCK)
children() { ps --ppid "$pm" -o pid= | tr -d ' ' | sort; }
sleep 1
aux=$(children)
backends_cpu() {
  local f
  f=$(sed 's/^.*) //' "/proc/$pm/stat")
  set -- $f
  echo $((${14} + ${15}))
}
quiet_backends() {
  for _ in $(seq 1 1000); do
    [ -z "$(comm -13 <(echo "$aux") <(children))" ] && return 0
    sleep 0.01
  done
  echo "the postmaster still has children other than $aux: $(children | tr '\n' ' ')" >&2
  return 1
}

pgb() {
  "$bindir/pgbench" -n -M prepared -c "$CLIENTS" -j 2 \
    -D users="$USERS" -D per_user="$PER_USER" -D heavy="$HEAVY" "$@"
}

# 2. writes
n=${#designs[@]}
log "writes: $ROUNDS rounds x 2 statements x $n designs x ${WRITE_SECS} s"
for round in $(seq 1 "$ROUNDS"); do
  shift_by=$(((round - 1) * n / ROUNDS))
  order=("${designs[@]:shift_by}" "${designs[@]:0:shift_by}")
  for op in insert update; do
    pos=0
    for d in "${order[@]}"; do
      pos=$((pos + 1))
      f=$raw/${op}_${d}_$round.txt
      sql "CHECKPOINT"
      sql "SELECT sum(pg_prewarm(rel)) FROM cd.rels('$d')" >/dev/null
      lsn0=$(sql "SELECT pg_current_wal_insert_lsn()")
      quiet_backends
      cpu0=$(backends_cpu)
      pgb -T "$WRITE_SECS" -f "$work/scripts/${op}_$d.sql" >"$f" 2>&1 || true
      quiet_backends
      cpu=$(($(backends_cpu) - cpu0))
      wal=$(sql "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0')")
      tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$f")
      lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$f")
      txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$f")
      if [ -z "$tps" ] || [ -z "$lat" ] || [ -z "$txns" ] || grep -q 'aborted\|^number of failed transactions: [1-9]' "$f"; then
        cat "$f" >&2
        echo "pgbench run failed: $f" >&2
        exit 1
      fi
      sql "INSERT INTO cd.run VALUES ('$d', '$op', $round, $pos, $tps, $lat, $txns, $wal, $cpu.0 / $clk_tck)"
      printf '    round %s %-6s %-2s %8.0f tps  %6.0f WAL B/txn  %5.0f us CPU/txn\n' "$round" "$op" "$d" "$tps" \
        "$(awk -v w="$wal" -v t="$txns" 'BEGIN {print w / t}')" "$(awk -v c="$cpu" -v t="$txns" -v k="$clk_tck" 'BEGIN {print c * 1e6 / k / t}')"
    done
  done
done

# 3. growth
log "growth: VACUUM, then $GROWTH_UPDATES updates per design (the same rows in each)"
sql "VACUUM (ANALYZE)" >/dev/null
for d in "${designs[@]}"; do
  sql "SELECT cd.snap_sizes('before growth', '$d', true), cd.snap_stats('before growth', '$d')" >/dev/null
  before=$(sql "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'cd.notes_$d'::regclass")
  pgb -t "$per_client" --random-seed=4242 -f "$work/scripts/update_$d.sql" >"$raw/growth_$d.txt" 2>&1 || {
    cat "$raw/growth_$d.txt" >&2
    exit 1
  }
  # the backends report their counts when they exit
  for _ in $(seq 1 100); do
    now=$(sql "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'cd.notes_$d'::regclass")
    [ $((now - before)) -ge "$GROWTH_UPDATES" ] && break
    sleep 0.1
  done
  sql "SELECT cd.snap_sizes('after growth', '$d', true), cd.snap_stats('after growth', '$d')" >/dev/null
done

# 4. pulls
if [ ${#pull_designs[@]} -gt 0 ]; then
  log "pulls: $HEAVY_CHANGED rows of heavy and $USER_CHANGED rows of $ordinary changed $PULL_EDITS times each since a token"
  sql "VACUUM (ANALYZE)" >/dev/null
  snap=$(sql "SELECT pg_current_snapshot()")
  arr="ARRAY['$(IFS=,; echo "${pull_designs[*]}" | sed "s/,/','/g")']"
  sql "CALL cd.edit($arr, 'heavy', $HEAVY_CHANGED, $PULL_EDITS)"
  sql "CALL cd.edit($arr, '$ordinary', $USER_CHANGED, $PULL_EDITS)"
  for d in "${pull_designs[@]}"; do
    sql "SELECT cd.measure_pull('$d', 'heavy', '$snap', $HEAVY_CHANGED, $PULL_REPS),
                cd.measure_pull('$d', '$ordinary', '$snap', $USER_CHANGED, $PULL_REPS)" >/dev/null
  done
fi

t_end=$(date +%s)
wall=$((t_end - t_start))
log "report"
{
  echo "# Change-record designs compared"
  echo
  machine
  echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- wall time of the run: $((wall / 60)) min $((wall % 60)) s"
  echo
  psql_ -At -v growth="$GROWTH_UPDATES" -v heavy_changed="$HEAVY_CHANGED" -v user_changed="$USER_CHANGED" \
    -v ordinary="$ordinary" -v pull_edits="$PULL_EDITS" -f "$here/sql/capture_designs_report.sql"
} >"$out/capture_designs.md"
cat "$out/capture_designs.md"
log "written: $out/capture_designs.md (wall time $((wall / 60)) min $((wall % 60)) s)"
