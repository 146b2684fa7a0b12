#!/usr/bin/env bash
# Builds the demo web app into DIR (make run passes its state directory's web/): index.html,
# app.css and app.js, one esbuild bundle of src/main.js with WatermelonDB and LokiJS.
#   bash examples/web/build.sh DIR        (after npm install in examples/web)
set -euo pipefail
cd "$(dirname "$0")"
out=${1:?output directory}
mkdir -p "$out"
node_modules/.bin/esbuild src/main.js --bundle --format=esm --target=es2020 --minify --sourcemap \
  --define:process.env.NODE_ENV='"production"' --define:global=globalThis \
  --log-level=warning --outfile="$out/app.js"
cp index.html app.css "$out/"
