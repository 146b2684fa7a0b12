#!/usr/bin/env bash
# The pg_regress suite and the isolation specs against a PostgreSQL 15 server
# built with assertions (--enable-cassert). Such a server checks its own
# invariants as it goes: the locks a caller must hold on a relation it
# writes, buffer pins and tuple slots, snapshots registered before use,
# memory contexts (freed memory is overwritten, overruns of a chunk are
# caught at reset). pg_sync writes its change records with the executor's
# own calls (capture.c), so this is where a misuse of them shows.
#
# The server is built from Debian's source package of postgresql-15
# (upstream's tarball, checksummed through the signed Sources index), with
# an apt configuration of its own under the build directory: nothing on the
# machine's apt setup changes. The build is kept for the next run.
#
#   bash test/assert/run.sh
#
#   PGSYNC_ASSERT_DIR   build and install directory (default /var/tmp/pg_sync-pg15-assert)
#   PGSYNC_ASSERT_PORT  the test cluster's port (default 55461)
#   DISCARD_CACHES=1    run with debug_discard_caches = 1: every relcache,
#                       catcache and plan-cache entry is dropped at every
#                       chance, so each cached thing is rebuilt where it can
#                       be (about 50-100x slower: the regression suite only,
#                       unless ISOLATION names specs)
#   VALGRIND=1          run the server under valgrind memcheck (palloc'd
#                       memory instrumented: -DUSE_VALGRIND); fails on any
#                       error valgrind reports (about 15 minutes)
#   REGRESS=..., ISOLATION=...  subsets, as for make installcheck
#
# Exits non-zero on a failed test, an assertion failure (TRAP) or a crash in
# the server log, or (VALGRIND=1) a valgrind error. Last line:
# "assert build: N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${PGSYNC_ASSERT_DIR:-/var/tmp/pg_sync-pg15-assert}
port=${PGSYNC_ASSERT_PORT:-55461}
prefix=$dir/install
. "$root/test/suite-lib.sh"
. "$root/test/as-pg.sh"
fail() { echo "assert build: $*" >&2; echo "assert build: 0 passed, 1 failed"; exit 1; }

# --- the server, built once ---------------------------------------------------
if [ ! -f "$dir/built" ] || [ ! -x "$prefix/bin/postgres" ]; then
  rm -rf "$dir"
  mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/src"
  # Debian's mirror, as the machine's own sources name it
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  {
    echo "deb-src [signed-by=$keyring] $mirror bookworm main"
    echo "deb-src [signed-by=$keyring] $mirror bookworm-updates main"
    echo "deb-src [signed-by=$keyring] ${mirror}-security bookworm-security main"
  } >"$dir/apt/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$dir/apt/sources.list" -o "Dir::Etc::SourceParts=$dir/apt/none"
            -o "Dir::State::Lists=$dir/apt/lists" -o "Dir::Cache=$dir/apt/cache"
            -o "Dir::State::status=/var/lib/dpkg/status" -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)")
  echo "== assert build: fetching postgresql-15's source package ($mirror)"
  apt-get "${apt_opts[@]}" -qq update >"$dir/apt.log" 2>&1 || { cat "$dir/apt.log"; fail "apt-get update of the source index failed"; }
  versions=$(apt-cache "${apt_opts[@]}" showsrc postgresql-15 2>/dev/null | sed -n 's/^Version: //p' | sort -rV | uniq)
  [ -n "$versions" ] || fail "no postgresql-15 source package in the index"
  got=""
  for v in $versions; do   # the newest the mirror holds
    if (cd "$dir/src" && apt-get "${apt_opts[@]}" -qq source --download-only "postgresql-15=$v" >>"$dir/apt.log" 2>&1); then
      got=$v; break
    fi
    rm -f "$dir/src"/*
  done
  [ -n "$got" ] || { tail -5 "$dir/apt.log"; fail "could not download any of: $versions"; }
  tarball=$(ls "$dir/src"/postgresql-15_*.orig.tar.*)
  tar -C "$dir/src" -xf "$tarball" || fail "could not unpack $tarball"
  srcdir=$(ls -d "$dir/src"/postgresql-15.*/)
  echo "== assert build: building PostgreSQL ${got%%-*} with --enable-cassert (a few minutes)"
  (
    cd "$srcdir" &&
      ./configure --prefix="$prefix" --enable-cassert --enable-debug --without-icu --without-readline \
        --without-zlib CFLAGS="-O2 -g -fno-omit-frame-pointer -DUSE_VALGRIND" &&
      make -s -j"$(nproc)" && make -s install &&
      make -s -C contrib/amcheck install && make -s -C src/test/isolation install
  ) >"$dir/build.log" 2>&1 || { tail -30 "$dir/build.log"; fail "building PostgreSQL failed (log: $dir/build.log)"; }
  cp "$srcdir/src/tools/valgrind.supp" "$dir/valgrind.supp"
  rm -rf "$dir/src" "$dir/apt/cache"   # the install is what is kept (about 60 MB)
  echo "$got" >"$dir/built"
fi
pgc=$prefix/bin/pg_config
"$prefix/bin/postgres" --version

# --- pg_sync, built against it in a copy of the tree ---------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/pg_sync_assert.XXXXXX")
chmod 755 "$work"
tree=$work/tree
mkdir -p "$tree"
(cd "$root" && tar --exclude=./.git --exclude='*/node_modules' --exclude=./.run --exclude=./test/bench/out -cf - .) | tar -C "$tree" -xf -
vgpid=""
cleanup() {
  if [ -n "$vgpid" ]; then as_pg "$prefix/bin/pg_ctl" -D "$work/cluster/data" -m fast -w -t 600 stop >/dev/null 2>&1
  else bash "$root/test/cluster.sh" stop "$work/cluster" >/dev/null 2>&1; fi
  rm -rf "$work"
}
trap cleanup EXIT
export PATH="$prefix/bin:$PATH"
(cd "$tree" && make -s clean >/dev/null 2>&1; make -s PG_CONFIG="$pgc" 2>&1) | tee "$work/build.log"
grep -q "warning:" "$work/build.log" && fail "the build against the assert-enabled server has warnings"
(cd "$tree" && make -s install PG_CONFIG="$pgc" >/dev/null) || fail "make install failed"

# --- the cluster ----------------------------------------------------------------
eval "$(bash "$root/test/cluster.sh" start "$work/cluster" "$port")" || fail "the cluster did not start"
log=$work/cluster/server.log
if [ "${VALGRIND:-0}" = 1 ]; then
  command -v valgrind >/dev/null || fail "VALGRIND=1 needs valgrind (apt-get install valgrind)"
  bash "$root/test/cluster.sh" stop "$work/cluster"
  mkdir -p "$work/vg" && chmod 777 "$work/vg"
  # amcheck of 15.x reads a short varlena's header as a 4-byte one
  # (verify_nbtree.c, bt_normalize_tuple): not pg_sync's, left out
  cat "$dir/valgrind.supp" - >"$work/vg/supp" <<'EOF'
{
   amcheck_short_varlena_header
   Memcheck:Addr4
   fun:bt_normalize_tuple
}
EOF
  as_pg setsid valgrind --quiet --trace-children=yes --track-origins=yes --read-var-info=no \
    --num-callers=40 --error-limit=no --suppressions="$work/vg/supp" --log-file="$work/vg/vg.%p.log" \
    "$prefix/bin/postgres" -D "$work/cluster/data" >"$log" 2>&1 &
  vgpid=$!
  for _ in $(seq 1 300); do pg_isready -q && break; sleep 1; done
  pg_isready -q || fail "the server under valgrind did not start"
fi
[ "$(psql -X -Atc 'SHOW debug_assertions')" = on ] || fail "the server does not have assertions on"
if [ "${DISCARD_CACHES:-0}" = 1 ]; then
  export PGOPTIONS="-c debug_discard_caches=1"
  : "${ISOLATION=}"   # unless named: all specs take about 90 minutes
fi

# --- the suites -----------------------------------------------------------------
args=()
[ -n "${REGRESS+x}" ] && args+=("REGRESS=$REGRESS")
[ -n "${ISOLATION+x}" ] && args+=("ISOLATION=$ISOLATION")
passed=0; failed=0
installcheck_counted "$tree" "$pgc" "${args[@]}"

server_log_failure "assert build: the server log shows an assertion failure or a crash" "$log" "TRAP:|terminated by signal"
if [ -n "$vgpid" ]; then
  as_pg "$prefix/bin/pg_ctl" -D "$work/cluster/data" -m fast -w -t 600 stop >/dev/null 2>&1
  vgpid=""
  # the first line of each error valgrind reports (not its "created by" origins)
  errors=$(cat "$work"/vg/vg.*.log 2>/dev/null | grep -E "^==[0-9]+== (Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination overlap|Argument .* fishy)" | grep -c .)
  echo "== valgrind: $errors errors"
  if [ "$errors" -gt 0 ]; then
    cat "$work"/vg/vg.*.log | head -200
    failed=$((failed + 1))
  fi
fi
print_failures
echo "assert build: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
