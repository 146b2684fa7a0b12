#!/usr/bin/env bash
# Shell tests of `make run` (examples/run.sh) the way a new user meets it: checkouts under a 0700
# directory (as root, and as a normal user in a 0700 home), ports taken by other programs, a state
# directory left by earlier runs, a crash of the sync server, Ctrl-C, and `make token`.
#
# Each test copies the working tree (tracked and untracked files that git does not ignore) to a
# fresh directory and runs `make run` there in the background, in its own process group, so that
# Ctrl-C can be delivered to it as a terminal does. Uses the pg_sync already installed
# (PGSYNC_SKIP_BUILD=1) and the Deno of test/e2e (PGSYNC_DENO). Readiness is bounded polling of
# the output; nothing depends on timing. Run as root (CI does): the normal-user test creates the
# user pgsync-runtest and removes it afterwards.
#
#   bash test/make-run/run.sh [TEST_NAME...]      ends with "N passed, N failed"
set -uo pipefail
set -m # background jobs get their own process group and take SIGINT like a terminal's Ctrl-C
# bash reports each background job the tests stop with a signal ("[1]+  Interrupt ...", "line N:
# PID Killed ..."): those are the tests' own Ctrl-Cs and kills, kept out of the output
exec 2> >(grep --line-buffered -vE '^\[[0-9]+\][+-]? +(Interrupt|Killed|Terminated)|: line [0-9]+: +[0-9]+ (Interrupt|Killed|Terminated) ' >&2)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="/usr/lib/postgresql/15/bin:$PATH"

e2e=$repo/test/e2e
if [ ! -x "$e2e/node_modules/.bin/deno" ]; then
  (cd "$e2e" && npm install --no-audit --no-fund --silent) || { echo "cannot install test/e2e's npm packages"; exit 1; }
fi
if [ ! -x "$repo/examples/web/node_modules/.bin/esbuild" ]; then
  (cd "$repo/examples/web" && npm install --no-audit --no-fund --silent) || { echo "cannot install the web app's npm packages"; exit 1; }
fi
[ -f "$(pg_config --pkglibdir)/pg_sync.so" ] || { echo "pg_sync is not installed (make && sudo make install)"; exit 1; }

work=$(mktemp -d /tmp/pg_sync_make_run.XXXXXX)
chmod 755 "$work"
touch "$work/.started"
cp "$(realpath "$e2e/node_modules/.bin/deno")" "$work/deno" # a copy any user can run
export PGSYNC_SKIP_BUILD=1 PGSYNC_DENO=$work/deno
unset PGSYNC_PORT PGSYNC_HTTP_PORT PGSYNC_RUN_DIR
TEST_USER=pgsync-runtest
created_user=""
jobs_started=()

is_root() { [ "$(id -u)" = 0 ]; }
. "$repo/test/as-pg.sh"

# --- fixtures -------------------------------------------------------------------------------------

# checkout DEST: the working tree as a clone would have it, plus the npm packages already here.
checkout() {
  local dest=$1
  mkdir -p "$dest"
  (cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$dest"
  cp -a "$repo/examples/web/node_modules" "$dest/examples/web/"
  [ -d "$repo/examples/supabase/functions/sync/node_modules" ] &&
    cp -a "$repo/examples/supabase/functions/sync/node_modules" "$dest/examples/supabase/functions/sync/"
  return 0
}

# free_port: a port nothing listens on, from 55100 up.
free_port() {
  node -e 'const net = require("net"); const skip = new Set(process.argv.slice(1).map(Number));
    (async () => { for (let p = 55100; p < 55400; p++) { if (skip.has(p)) continue;
      const ok = await new Promise((r) => { const s = net.createServer(); s.once("error", () => r(false));
        s.listen(p, "127.0.0.1", () => s.close(() => r(true))) }); if (ok) { console.log(p); return } }
      process.exit(1) })()' "$@"
}

# listener PORT [http]: another program on PORT (plain TCP, or an HTTP server answering 200 to
# everything); prints its pid once it listens.
listener() {
  local port=$1 kind=${2:-tcp} log
  log=$(mktemp "$work/listener.XXXXXX")
  node -e 'const [port, kind] = process.argv.slice(1); const net = require("net"), http = require("http");
    const srv = kind === "http"
      ? http.createServer((q, s) => { s.writeHead(200, {"content-type": "application/json"}); s.end("{\"ok\": true}") })
      : net.createServer((c) => c.end());
    srv.listen(Number(port), "127.0.0.1", () => console.log("listening"))' "$port" "$kind" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do grep -q listening "$log" && { echo "$pid"; return 0; }; sleep 0.1; done
  echo "listener on $port did not start: $(cat "$log")" >&2
  return 1
}

# start_run DIR LOG [VAR=VALUE ...]: `make run` in DIR, in the background; sets $run_pid (also the
# process group). As $RUN_AS when set.
start_run() {
  local dir=$1 log=$2; shift 2
  : >"$log"
  if [ -n "${RUN_AS:-}" ]; then
    runuser -u "$RUN_AS" -- env HOME="$(getent passwd "$RUN_AS" | cut -d: -f6)" PGSYNC_SKIP_BUILD=1 \
      PGSYNC_DENO="$PGSYNC_DENO" "$@" make -C "$dir" run >"$log" 2>&1 </dev/null &
  else
    env "$@" make -C "$dir" run >"$log" 2>&1 </dev/null &
  fi
  run_pid=$!
  jobs_started+=("$run_pid")
}

# wait_banner LOG: until make run printed its banner (0) or ended (1); 4 minutes at most.
wait_banner() {
  local log=$1
  for _ in $(seq 1 480); do
    grep -q "Press Ctrl-C to stop" "$log" && return 0
    kill -0 "$run_pid" 2>/dev/null || return 1
    sleep 0.5
  done
  return 1
}

# wait_exit PID: until the process ended (bounded), then its status in $exit_status.
wait_exit() {
  local pid=$1
  for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then exit_status=timeout; return 1; fi
  wait "$pid" 2>/dev/null
  exit_status=$?
}

ctrl_c() { kill -INT -- "-$1" 2>/dev/null; wait_exit "$1"; }

# banner fields
banner_url() { sed -n 's|^  web app: *\(http://127.0.0.1:[0-9]*\)/.*|\1|p' "$1" | tail -1; }
banner_token() { grep -A1 'a JWT for "demo-user"' "$1" | tail -1 | tr -d ' '; }
banner_psql() { sed -n 's|^  database: *\(psql .*\)$|\1|p' "$1" | tail -1; }
data_dir() { # DIR: the cluster's data directory of the checkout DIR
  if [ -f "$1/.run/pg-location" ]; then echo "$(cat "$1/.run/pg-location")/data"; else echo "$1/.run/pg/data"; fi
}
pg_running() { [ -f "$1/postmaster.pid" ] && as_pg pg_ctl -D "$1" status >/dev/null 2>&1; }
pg_stopped() { ! pg_running "$1"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_closed() { ! port_open "$1"; }
pull_status() { # URL TOKEN
  curl -s -o /dev/null -w '%{http_code}' -X POST "$1/sync/pull" -H "Authorization: Bearer $2" -d '{"lastPulledAt": null}'
}

# --- assertions -----------------------------------------------------------------------------------
problems=()
expect() { # DESCRIPTION COMMAND...: records a failure unless the command succeeds
  local what=$1; shift
  "$@" >/dev/null 2>&1 || problems+=("$what")
}
expect_in() { grep -q -- "$2" "$1" || problems+=("output lacks: $2"); }
expect_not_in() { ! grep -q -- "$2" "$1" || problems+=("output has: $(grep -m1 -- "$2" "$1")"); }

# check_running DIR LOG: the banner's promises hold (its psql line, its JWT, make token).
check_running() {
  local dir=$1 log=$2 url token psql_line alice
  url=$(banner_url "$log"); token=$(banner_token "$log"); psql_line=$(banner_psql "$log")
  [ -n "$url" ] && [ -n "$token" ] && [ -n "$psql_line" ] || { problems+=("no banner fields"); return; }
  expect "the banner's JWT pulls" test "$(pull_status "$url" "$token")" = 200
  expect "the banner's psql line connects" bash -c "$psql_line -X -A -t -c 'SELECT count(*) FROM tags' | grep -qx 2"
  alice=$(cd "$dir" && if [ -n "${RUN_AS:-}" ]; then runuser -u "$RUN_AS" -- make -s token USER=alice; else make -s token USER=alice; fi)
  expect "make token USER=alice pulls" test "$(pull_status "$url" "$alice")" = 200
  expect "make token mints a token for alice" bash -c "echo '$alice' | cut -d. -f2 | base64 -d 2>/dev/null | grep -q '\"sub\":\"alice\"'"
  expect "the web app is served" bash -c "curl -sf '$url/' | grep -q '<title>pg_sync demo'"
  expect_not_in "$log" "Permission denied"
  expect_not_in "$log" "could not"
}

# check_stopped DIR LOG URL: Ctrl-C left nothing running.
check_stopped() {
  local dir=$1 log=$2 url=$3 data
  data=$(data_dir "$dir")
  expect "PostgreSQL is stopped after Ctrl-C" pg_stopped "$data"
  expect "the HTTP port is closed after Ctrl-C" port_closed "${url##*:}"
  expect "no run.pid left" test ! -e "$dir/.run/run.pid"
  expect_in "$log" "stopped (PostgreSQL and the sync server)"
}

# --- tests ----------------------------------------------------------------------------------------

# Problem 1 and 9: a checkout under a 0700 directory, as root; Ctrl-C stops PostgreSQL too.
test_private_parent_as_root() {
  is_root || { echo "  (skipped: not root)"; return 0; }
  local dir=$work/private/pg_sync log=$work/private.log url
  mkdir -p "$work/private" && chmod 700 "$work/private"
  checkout "$dir"
  local p1 p2
  p1=$(free_port); p2=$(free_port "$p1")
  start_run "$dir" "$log" PGSYNC_PORT="$p1" PGSYNC_HTTP_PORT="$p2"
  wait_banner "$log" || { problems+=("no banner: $(tail -5 "$log")"); return; }
  check_running "$dir" "$log"
  url=$(banner_url "$log")
  ctrl_c "$run_pid"
  check_stopped "$dir" "$log" "$url"
  # running it again works
  start_run "$dir" "$log.2"
  wait_banner "$log.2" || { problems+=("second run: no banner: $(tail -5 "$log.2")"); return; }
  check_running "$dir" "$log.2"
  url=$(banner_url "$log.2")
  ctrl_c "$run_pid"
  check_stopped "$dir" "$log.2" "$url"
}

# Problem 1 for a normal user: a checkout in a 0700 home.
test_normal_user_private_home() {
  is_root || { echo "  (skipped: not root)"; return 0; }
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$TEST_USER" || { problems+=("useradd failed"); return; }
    created_user=1
  fi
  local home dir log url
  home=$(getent passwd "$TEST_USER" | cut -d: -f6)
  chmod 700 "$home"
  dir=$home/src/pg_sync
  rm -rf "$home/src"
  checkout "$dir"
  chown -R "$TEST_USER": "$home/src"
  log=$work/user.log
  local p1 p2
  p1=$(free_port); p2=$(free_port "$p1")
  RUN_AS=$TEST_USER start_run "$dir" "$log" PGSYNC_PORT="$p1" PGSYNC_HTTP_PORT="$p2"
  RUN_AS=$TEST_USER wait_banner "$log" || { problems+=("no banner: $(tail -5 "$log")"); return; }
  RUN_AS=$TEST_USER check_running "$dir" "$log"
  expect "the cluster runs as $TEST_USER" bash -c "pgrep -u '$TEST_USER' -f 'postgres -D' >/dev/null"
  url=$(banner_url "$log")
  ctrl_c "$run_pid"
  expect "PostgreSQL of $TEST_USER is stopped" bash -c "! pgrep -u '$TEST_USER' -f 'postgres -D'"
  expect "the HTTP port is closed" port_closed "${url##*:}"
  expect_in "$log" "stopped (PostgreSQL and the sync server)"
  [ -n "${VERBOSE:-}" ] && cat "$log"
  return 0
}

# Problem 2: the database port is taken. One clear line naming the port and the variable; nothing
# started.
test_db_port_taken() {
  local dir=$work/dbport log=$work/dbport.log port lpid
  checkout "$dir"
  port=$(free_port); lpid=$(listener "$port") || { problems+=("no listener"); return; }
  start_run "$dir" "$log" PGSYNC_PORT="$port" PGSYNC_HTTP_PORT="$(free_port "$port")"
  wait_exit "$run_pid"
  kill "$lpid"
  expect "make run fails" test "$exit_status" != 0
  expect_in "$log" "make run: port $port (PGSYNC_PORT) is in use by another program: set PGSYNC_PORT to a free port"
  expect "exactly one line of make run's own" test "$(grep -c '^make run:' "$log")" = 1
  expect_not_in "$log" "psql"
  expect_not_in "$log" "pg_ctl"
  expect "no cluster was created" test ! -e "$(data_dir "$dir")/PG_VERSION"
}

# Problem 3: the HTTP port is taken by another HTTP server (answering 200 to everything).
# Explicitly chosen: refused with one line, nothing started, no banner.
test_http_port_taken_explicit() {
  local dir=$work/httpport log=$work/httpport.log port lpid
  checkout "$dir"
  port=$(free_port); lpid=$(listener "$port" http) || { problems+=("no listener"); return; }
  start_run "$dir" "$log" PGSYNC_PORT="$(free_port "$port")" PGSYNC_HTTP_PORT="$port"
  wait_exit "$run_pid"
  kill "$lpid"
  expect "make run fails" test "$exit_status" != 0
  expect_in "$log" "make run: port $port (PGSYNC_HTTP_PORT) is in use by another program: set PGSYNC_HTTP_PORT to a free port"
  expect_not_in "$log" "pg_sync is running"
  expect_not_in "$log" "AddrInUse"
  expect "no cluster was created" test ! -e "$(data_dir "$dir")/PG_VERSION"
}

# Problem 3, the default port: 8787 taken by another HTTP server; make run takes the next free
# port, says so, and its banner is about its own server.
test_http_port_taken_default() {
  local dir=$work/httpdefault log=$work/httpdefault.log lpid="" url
  checkout "$dir"
  if port_open 8787; then echo "  (8787 is already taken by another program)"; else
    lpid=$(listener 8787 http) || { problems+=("no listener on 8787"); return; }
  fi
  start_run "$dir" "$log" PGSYNC_PORT="$(free_port)"
  wait_banner "$log" || { problems+=("no banner: $(tail -5 "$log")"); [ -n "$lpid" ] && kill "$lpid"; return; }
  url=$(banner_url "$log")
  expect "the banner's port is not 8787" test "${url##*:}" != 8787
  expect_in "$log" "port 8787 is in use by another program; using ${url##*:} (PGSYNC_HTTP_PORT chooses)"
  check_running "$dir" "$log"
  ctrl_c "$run_pid"
  [ -n "$lpid" ] && kill "$lpid"
  check_stopped "$dir" "$log" "$url"
}

# Problem 2: a changed PGSYNC_PORT takes effect on an existing .run.
test_port_change_takes_effect() {
  local dir=$work/portchange log=$work/portchange.log a b url
  checkout "$dir"
  a=$(free_port); b=$(free_port "$a")
  start_run "$dir" "$log" PGSYNC_PORT="$a"
  wait_banner "$log" || { problems+=("first run: no banner: $(tail -5 "$log")"); return; }
  ctrl_c "$run_pid"
  start_run "$dir" "$log.2" PGSYNC_PORT="$b"
  wait_banner "$log.2" || { problems+=("second run: no banner: $(tail -5 "$log.2")"); return; }
  expect "the banner names the new port" grep -q "psql -h .* -p $b " "$log.2"
  expect "PostgreSQL listens on the new port" psql -X -h 127.0.0.1 -p "$b" -U postgres -d postgres -c 'SELECT 1'
  expect "and not on the old one" port_closed "$a"
  check_running "$dir" "$log.2"
  url=$(banner_url "$log.2")
  ctrl_c "$run_pid"
  check_stopped "$dir" "$log.2" "$url"
}

# A run killed without its cleanup (kill -9) leaves PostgreSQL running and a run.pid: the next
# make run stops that cluster and starts normally.
test_left_running() {
  local dir=$work/leftover log=$work/leftover.log data url
  checkout "$dir"
  start_run "$dir" "$log" PGSYNC_PORT="$(free_port)"
  wait_banner "$log" || { problems+=("first run: no banner: $(tail -5 "$log")"); return; }
  kill -KILL -- "-$run_pid"
  wait_exit "$run_pid"
  data=$(data_dir "$dir")
  pg_running "$data" || { problems+=("setup: PostgreSQL did not survive kill -9 of make run"); }
  expect "the killed run left run.pid" test -e "$dir/.run/run.pid"
  start_run "$dir" "$log.2" PGSYNC_PORT="$(free_port)"
  wait_banner "$log.2" || { problems+=("second run: no banner: $(tail -5 "$log.2")"); return; }
  expect_in "$log.2" "stopping the PostgreSQL an earlier make run left running"
  check_running "$dir" "$log.2"
  url=$(banner_url "$log.2")
  ctrl_c "$run_pid"
  check_stopped "$dir" "$log.2" "$url"
}

# A second make run on the same checkout while the first runs: refused with one line; the first
# is unharmed.
test_second_run_refused() {
  local dir=$work/twice log=$work/twice.log first url
  checkout "$dir"
  start_run "$dir" "$log" PGSYNC_PORT="$(free_port)"
  wait_banner "$log" || { problems+=("first run: no banner: $(tail -5 "$log")"); return; }
  first=$run_pid
  start_run "$dir" "$log.2"
  wait_exit "$run_pid"
  expect "the second run fails" test "$exit_status" != 0
  expect_in "$log.2" "make run: make run is already running for $dir/.run (pid"
  run_pid=$first
  check_running "$dir" "$log"
  url=$(banner_url "$log")
  ctrl_c "$first"
  check_stopped "$dir" "$log" "$url"
}

# Problem 4: a 300 MB push is refused (413) and changes nothing; the sync server dies (kill -9, as
# the kernel's OOM killer does): make run says so, PostgreSQL keeps running, the server comes back.
test_server_crash() {
  local dir=$work/crash log=$work/crash.log url token deno_pid code
  checkout "$dir"
  start_run "$dir" "$log" PGSYNC_PORT="$(free_port)"
  wait_banner "$log" || { problems+=("no banner: $(tail -5 "$log")"); return; }
  url=$(banner_url "$log"); token=$(banner_token "$log")
  truncate -s 300M "$work/big.json" # sparse: takes no disk
  code=$(curl -s -o "$work/big.out" -w '%{http_code}' -X POST -T "$work/big.json" \
    -H "Authorization: Bearer $token" -H 'content-type: application/json' "$url/sync/push")
  expect "a 300 MB push is answered 413" test "$code" = 413
  expect "with code 54000" grep -q '"code":"54000"' "$work/big.out"
  expect "the server still answers" test "$(pull_status "$url" "$token")" = 200
  expect_not_in "$log" "the sync server (pid"
  deno_pid=$(pgrep -g "$run_pid" -f 'examples/dev/server.ts' | head -1)
  [ -n "$deno_pid" ] || { problems+=("no sync server process found"); return; }
  kill -KILL "$deno_pid"
  for _ in $(seq 1 240); do grep -q "the sync server is back" "$log" && break; kill -0 "$run_pid" || break; sleep 0.5; done
  expect_in "$log" "make run: the sync server (pid $deno_pid) was killed by signal KILL; PostgreSQL is still running"
  expect_in "$log" "the sync server is back on $url/"
  expect "make run is still running" kill -0 "$run_pid"
  expect "PostgreSQL still runs" pg_running "$(data_dir "$dir")"
  expect "the server answers again" test "$(pull_status "$url" "$token")" = 200
  ctrl_c "$run_pid"
  check_stopped "$dir" "$log" "$url"
}

# Problem 2: when PostgreSQL cannot start, make run shows the cause from server.log, and no
# unrelated psql error.
test_pg_start_failure_explained() {
  local dir=$work/badconf log=$work/badconf.log data
  checkout "$dir"
  start_run "$dir" "$log" PGSYNC_PORT="$(free_port)"
  wait_banner "$log" || { problems+=("first run: no banner: $(tail -5 "$log")"); return; }
  ctrl_c "$run_pid"
  data=$(data_dir "$dir")
  echo "shared_buffers = 'plenty'" >>"$data/postgresql.conf"
  start_run "$dir" "$log.2" PGSYNC_PORT="$(free_port)"
  wait_exit "$run_pid"
  expect "make run fails" test "$exit_status" != 0
  expect_in "$log.2" "make run: PostgreSQL did not start; the end of .*server.log says:"
  expect_in "$log.2" 'invalid value for parameter "shared_buffers"'
  expect_not_in "$log.2" "psql:"
  expect_not_in "$log.2" "pg_sync is running"
}

# --- runner ---------------------------------------------------------------------------------------

cleanup() {
  set +e
  for pid in "${jobs_started[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
  # every cluster a test made: under $work, in the test user's home, or moved to postgres's home
  for data in "$work"/*/.run/pg/data "$work"/*/*/.run/pg/data; do
    [ -f "$data/postmaster.pid" ] && as_pg pg_ctl -D "$data" -m immediate -w stop >/dev/null 2>&1
  done
  for loc in "$work"/*/.run/pg-location "$work"/*/*/.run/pg-location; do
    [ -f "$loc" ] || continue
    d=$(cat "$loc")
    as_pg pg_ctl -D "$d/data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$d"
    rmdir "$(dirname "$d")" 2>/dev/null # pg_sync-run/, unless another checkout's cluster is there
  done
  if id "$TEST_USER" >/dev/null 2>&1; then
    d=$(getent passwd "$TEST_USER" | cut -d: -f6)/src/pg_sync/.run/pg/data
    [ -f "$d/postmaster.pid" ] && runuser -u "$TEST_USER" -- pg_ctl -D "$d" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ -n "$created_user" ]; then
    pkill -KILL -u "$TEST_USER" 2>/dev/null
    userdel -r "$TEST_USER" >/dev/null 2>&1
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

all=(test_private_parent_as_root test_normal_user_private_home test_db_port_taken test_http_port_taken_explicit
  test_http_port_taken_default test_port_change_takes_effect test_left_running test_second_run_refused
  test_server_crash test_pg_start_failure_explained)
if [ $# -gt 0 ]; then selected=("$@"); else selected=("${all[@]}"); fi
passed=0; failed=0
for t in "${selected[@]}"; do
  problems=()
  echo "== $t"
  "$t"
  if [ ${#problems[@]} -eq 0 ]; then
    passed=$((passed + 1)); echo "ok: $t"
  else
    failed=$((failed + 1)); echo "FAILED: $t"
    printf '    %s\n' "${problems[@]}"
    for f in "$work"/*.log*; do # what make run printed, for the diagnosis
      [ "$f" -nt "$work/.started" ] && { echo "    --- $(basename "$f")"; sed 's/^/    | /' "$f" | tail -n 25; }
    done
  fi
  touch "$work/.started"
done
echo "make-run: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
