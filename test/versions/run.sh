#!/usr/bin/env bash
# The pg_regress suite, the isolation specs, the two stress tests, the crash
# test and the failover test against other major versions of PostgreSQL
# than the machine's 15: Debian's own packages of them, installed in a
# Debian root of the release that ships them, made with debootstrap (17:
# trixie, 18: sid). pg_sync is built there with PGXS as a user of that
# release builds it (warnings fail the run), installed, and tested on a
# cluster of its own.
# PostgreSQL 14 and 16 are in no Debian release the mirror serves;
# test/pgversions.sh compiles against source trees of those.
#
#   sudo bash test/versions/run.sh [MAJOR...]     (default: 17 18)
#
#   PGSYNC_VERSIONS_DIR  where the roots are kept for the next run
#                        (default /var/tmp/pg_sync-versions; about 2 GB each,
#                        most of it the clang and LLVM that PGXS builds with)
#   REGRESS=..., ISOLATION=...  subsets, as for make installcheck
#   STRESS_SECONDS       how long each of the two stress tests runs after the
#                        suites (test/stress: convergence, and push races
#                        with sync_prune; default 10, 0 skips them)
#
# Needs root: debootstrap, chroot and two mounts inside the root (/proc, and
# a tmpfs on /dev/shm for the server's shared memory; where mounting is not
# allowed, it goes on without them). Nothing outside the roots changes. Exits non-zero on a failed test, a build warning or a crash
# in a server log. Last line: "other versions: N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/test/suite-lib.sh"

# --- inside a root: build, install, test (run.sh --inside MAJOR PORT) ----------
if [ "${1:-}" = --inside ]; then
  major=$2 port=$3
  pgc=/usr/lib/postgresql/$major/bin/pg_config
  export PATH="/usr/lib/postgresql/$major/bin:$PATH"
  cd "$root" || exit 2
  passed=0; failed=0; status=0
  "$pgc" --version
  make -s clean >/dev/null 2>&1
  make -s PG_CONFIG="$pgc" 2>&1 | tee build.log
  if grep -q "warning:" build.log || ! make -s install PG_CONFIG="$pgc" >/dev/null; then
    echo "postgresql $major: the build has warnings or failed"
    echo "postgresql $major: 0 passed, 1 failed"; exit 1
  fi
  cluster=/var/tmp/pg_sync-cluster
  bash test/cluster.sh stop "$cluster" >/dev/null 2>&1
  rm -rf "$cluster"
  eval "$(bash test/cluster.sh start "$cluster" "$port")" || { echo "postgresql $major: 0 passed, 1 failed"; exit 1; }
  chmod -R a+rX "$root"
  args=()
  [ -n "${REGRESS+x}" ] && args+=("REGRESS=$REGRESS")
  [ -n "${ISOLATION+x}" ] && args+=("ISOLATION=$ISOLATION")
  installcheck_counted "$root" "$pgc" "${args[@]}"
  if [ "${STRESS_SECONDS:-10}" -gt 0 ]; then
    for s in stress/run.sh stress/push_race/run.sh; do
      run_check "test/$s, ${STRESS_SECONDS:-10} s" "$s" env DURATION="${STRESS_SECONDS:-10}" bash "test/$s"
    done
  fi
  run_check test/crash/run.sh crash/run.sh env PGSYNC_CRASH_PORT=$((56350 + major - 14)) bash test/crash/run.sh
  run_suite test/failover/run.sh failover env PGSYNC_FAILOVER_PORT=$((56300 + 2 * (major - 14))) bash test/failover/run.sh
  bash test/cluster.sh stop "$cluster" >/dev/null 2>&1
  server_log_failure "postgresql $major: the server log shows a crash" "$cluster/server.log" \
    "TRAP:|terminated by signal|was terminated by exception"
  print_failures
  echo "postgresql $major: $passed passed, $failed failed"
  [ "$status" -eq 0 ] && [ "$failed" -eq 0 ]; exit
fi

# --- outside: a root per release, kept --------------------------------------------
dir=${PGSYNC_VERSIONS_DIR:-/var/tmp/pg_sync-versions}
majors=${*:-17 18}
passed=0; failed=0; status=0
say_fail() { echo "other versions: $*" >&2; note_failure "other versions: $*"; failed=$((failed + 1)); }
[ "$(id -u)" = 0 ] || { echo "other versions: needs root (debootstrap, chroot)" >&2; echo "other versions: 0 passed, 1 failed"; exit 1; }
command -v debootstrap >/dev/null || { echo "other versions: needs debootstrap (apt-get install debootstrap)" >&2; echo "other versions: 0 passed, 1 failed"; exit 1; }
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$dir"

mounted=()
unmount_all() {
  local m
  for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  mounted=()
}
trap unmount_all EXIT
# true when nothing is mounted below $1 (so that it can be removed)
nothing_mounted_in() { ! awk '{print $2}' /proc/mounts | grep -q "^$1/"; }

for major in $majors; do
  case $major in
    17) release=trixie ;;
    18) release=sid ;;
    *) say_fail "no Debian release known to ship PostgreSQL $major"; continue ;;
  esac
  r=$dir/$release
  echo "== PostgreSQL $major (Debian $release, in $r)"
  if [ ! -f "$r/.pg_sync-ready-$major" ]; then
    nothing_mounted_in "$r" || { say_fail "$r has something mounted in it; not removing it"; continue; }
    rm -rf --one-file-system "$r"
    echo "   making the root with debootstrap ($mirror)"
    if ! debootstrap --variant=minbase "$release" "$r" "$mirror" >"$dir/$release.log" 2>&1; then
      tail -5 "$dir/$release.log"; say_fail "debootstrap $release failed (log: $dir/$release.log)"; continue
    fi
    # the packages' scripts start no service and create no cluster
    printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod 755 "$r/usr/sbin/policy-rc.d"
    mkdir -p "$r/etc/postgresql-common"
    echo "create_main_cluster = false" >"$r/etc/postgresql-common/createcluster.conf"
    # sid's Release files carry a short validity; a mirror that serves a
    # snapshot serves them expired (their signatures are still checked)
    echo 'Acquire::Check-Valid-Until "false";' >"$r/etc/apt/apt.conf.d/99pg-sync-tests"
  fi
  # where mounting is not allowed, the root does without: apt and the server
  # run without /proc, and shared memory then lives in files in /dev/shm
  if mount -t proc proc "$r/proc" 2>/dev/null; then mounted+=("$r/proc"); else echo "   (no /proc: mounting is not allowed here)"; fi
  if mount -t tmpfs -o mode=1777,size=512m tmpfs "$r/dev/shm" 2>/dev/null; then mounted+=("$r/dev/shm")
  else mkdir -p "$r/dev/shm" && chmod 1777 "$r/dev/shm"; fi
  if [ ! -f "$r/.pg_sync-ready-$major" ]; then
    echo "   installing postgresql-$major and what PGXS builds with"
    if ! chroot "$r" /usr/bin/env DEBIAN_FRONTEND=noninteractive /bin/sh -c \
      "apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-$major postgresql-server-dev-$major libjansson-dev gcc libc6-dev make && apt-get clean" \
      >>"$dir/$release.log" 2>&1; then
      tail -5 "$dir/$release.log"; unmount_all; say_fail "installing postgresql-$major in $release failed (log: $dir/$release.log)"; continue
    fi
    touch "$r/.pg_sync-ready-$major"
  fi
  # the tree, copied in
  rm -rf "$r/tmp/pg_sync" && mkdir -p "$r/tmp/pg_sync"
  (cd "$root" && tar --exclude=./.git --exclude='*/node_modules' --exclude=./.run --exclude=./test/bench/out -cf - .) | tar -C "$r/tmp/pg_sync" -xf -
  envs=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
  [ -n "${REGRESS+x}" ] && envs+=("REGRESS=$REGRESS")
  [ -n "${ISOLATION+x}" ] && envs+=("ISOLATION=$ISOLATION")
  [ -n "${STRESS_SECONDS+x}" ] && envs+=("STRESS_SECONDS=$STRESS_SECONDS")
  run_suite "PostgreSQL $major: build, install, tests" "postgresql $major" \
    chroot "$r" /usr/bin/env -i "${envs[@]}" bash /tmp/pg_sync/test/versions/run.sh --inside "$major" $((55480 + major - 14))
  unmount_all
done
print_failures
echo "other versions: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
