#!/usr/bin/env bash
# The main job: a local PostgreSQL with pg_sync and a demo schema, ready for
# a client. Installs what is missing, builds and installs pg_sync, keeps the
# cluster in ./.run (as the "postgres" user when run as root), stops it on
# Ctrl-C. Running it again reuses the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
need=()
for pkg in postgresql-15 postgresql-server-dev-15 libjansson-dev build-essential; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
$SUDO make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null

port=${PGSYNC_PORT:-54320}
dir="$root/.run"
mkdir -p "$dir"
eval "$("$root/test/cluster.sh" start "$dir" "$port")"
trap '"$root/test/cluster.sh" stop "$dir"; echo; echo "stopped"' EXIT
psql -X -q -v ON_ERROR_STOP=1 -d postgres -f examples/demo.sql >/dev/null

cat <<MSG
pg_sync is running.
  connect:  psql -h $PGHOST -p $PGPORT -U postgres postgres
  pull as the demo user:
    psql -h $PGHOST -p $PGPORT -U postgres postgres -c "BEGIN; SELECT set_config('request.jwt.claims', '{\"sub\": \"demo-user\"}', true); SELECT sync_pull(); COMMIT;"
Press Ctrl-C to stop.
MSG
while true; do sleep 3600; done
