#!/usr/bin/env bash
# Browser test of make run's demo app: starts `make run` (examples/run.sh) on free ports with a
# temporary state directory, and drives Debian's headless Chromium with playwright-core (no browser
# download). Installs what is missing: the chromium package (apt, as root), the npm packages of
# this directory, test/e2e (for its Deno) and examples/web. Assumes pg_sync is installed.
# Screenshots go to test/browser/out/. Ends with node's "# pass N" / "# fail N".
set -euo pipefail
cd "$(dirname "$0")"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
if [ ! -x /usr/bin/chromium ]; then
  [ "$(id -u)" = 0 ] || { echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1; }
  echo "== installing chromium (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
for dir in . ../e2e ../../examples/web; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "== installing npm packages ($dir)"
    (cd "$dir" && npm install --no-audit --no-fund --silent)
  fi
done
echo "== browser test of the demo app (headless Chromium)"
rm -rf out
npm test
