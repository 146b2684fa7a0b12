# Sourced by the README's commands (examples/run.sh, test/run-tests.sh):
# installs with apt what a fresh Debian machine lacks to build pg_sync, run
# PostgreSQL 15, and run the HTTP parts (Node.js and npm, curl). Sets SUDO
# ("" as root) and puts PostgreSQL 15's binaries first on PATH.
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
ensure_deps() {
  local need=() pkg
  for pkg in postgresql-15 postgresql-server-dev-15 build-essential; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}
# the browser test's Chromium (Debian's; playwright-core drives it, no browser
# download), PgBouncer for the scale tests, debootstrap for the tests on
# other major versions
ensure_test_deps() {
  local need=()
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
  [ ${#need[@]} -eq 0 ] && return 0
  echo "== installing ${need[*]}"
  $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
}
