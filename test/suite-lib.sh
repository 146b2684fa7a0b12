# Sourced by test/run-tests.sh, test/assert/run.sh and test/versions/run.sh:
# running suites and adding up what they report into the caller's passed,
# failed and status. Each failure is also noted with the end of its output,
# and print_failures repeats those notes just before the totals, where the
# end of a long log shows them.

failures_file=$(mktemp "${TMPDIR:-/tmp}/pg_sync_failures.XXXXXX")

# note_failure TITLE [LOG [tap]]: the failing suite's title and the end of its
# output, if any; for node's test runner, its failing subtests first.
note_failure() {
  local title=$1 log=${2:-} format=${3:-}
  {
    echo "== FAILED: $title"
    if [ -z "$log" ]; then
      :
    elif [ "$format" = tap ] && grep -qE '^[[:space:]]*not ok' "$log"; then
      grep -E -A24 '^[[:space:]]*not ok' "$log" | head -n 120 | sed 's/^/  | /'
    else
      tail -n 40 "$log" | sed 's/^/  | /'
    fi
  } >>"$failures_file"
}

# server_log_failure TITLE LOG PATTERN: when the server log LOG has lines
# matching PATTERN (a backend killed by a signal, a failed assertion), prints
# them with their context and counts and notes one failure.
server_log_failure() {
  local title=$1 log=$2 pattern=$3 found
  grep -qE "$pattern" "$log" || return 0
  echo "== $title:"
  found=$(mktemp "${TMPDIR:-/tmp}/pg_sync_crash.XXXXXX")
  grep -E -B2 -A12 "$pattern" "$log" | head -80 | tee "$found"
  failed=$((failed + 1)); status=1
  note_failure "$title" "$found"
  rm -f "$found"
}

# Prints the notes of the failures so far (nothing when there were none).
print_failures() {
  if [ -s "$failures_file" ]; then
    echo "== what failed (the end of each failing suite's output)"
    cat "$failures_file"
  fi
  rm -f "$failures_file"
}

# pg_regress suite and isolation specs of the tree DIR, built against
# PG_CONFIG, on the server of PGHOST/PGPORT; prints regression.diffs. Returns
# non-zero when make installcheck failed (one failure counted if pg_regress
# reported none).
installcheck_counted() { # DIR PG_CONFIG [make variables...]
  local dir=$1 pgc=$2 st line f p=0 fl=0
  shift 2
  rm -rf "$dir/results" "$dir/output_iso" "$dir/regression.diffs"
  (cd "$dir" && make installcheck PG_CONFIG="$pgc" "$@") 2>&1 | tee "$dir/installcheck.log"
  st=${PIPESTATUS[0]}
  for f in "$dir/regression.diffs" "$dir/output_iso/regression.diffs"; do
    [ -s "$f" ] && { echo "== $f"; cat "$f"; }
  done
  if [ "$st" -ne 0 ]; then
    { grep -E 'FAILED|failed \(ignored\)|tests? failed' "$dir/installcheck.log"
      for f in "$dir/regression.diffs" "$dir/output_iso/regression.diffs"; do
        [ -s "$f" ] && head -n 60 "$f"
      done; } >"$dir/installcheck.failed" 2>/dev/null
    note_failure "make installcheck ($pgc)" "$dir/installcheck.failed"
    rm -f "$dir/installcheck.failed"
  fi
  while read -r line; do
    if [[ $line =~ All\ ([0-9]+)\ tests\ passed ]]; then p=$((p + BASH_REMATCH[1]))
    elif [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
      fl=$((fl + BASH_REMATCH[1])); p=$((p + BASH_REMATCH[2] - BASH_REMATCH[1]))
    fi
  done <"$dir/installcheck.log"
  rm -f "$dir/installcheck.log"
  [ "$st" -ne 0 ] && [ "$fl" -eq 0 ] && fl=1
  passed=$((passed + p)); failed=$((failed + fl))
  [ "$st" -eq 0 ]
}

# A suite that reports its counts last: FORMAT "tap" for node's test runner
# ("# pass N" / "# fail N"), else "FORMAT: N passed, N failed". A non-zero
# exit sets status and counts one failure if the suite reported none.
# (Its output goes through a file of its own: a suite may run suites itself.)
run_suite() { # TITLE FORMAT COMMAND...
  local title=$1 format=$2 st p f log
  echo "== $1"; shift 2
  log=$(mktemp "${TMPDIR:-/tmp}/pg_sync_suite.XXXXXX")
  "$@" 2>&1 | tee "$log"
  st=${PIPESTATUS[0]}
  if [ "$format" = tap ]; then
    p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
  else
    p=$(sed -n "s/^$format: \([0-9]*\) passed, [0-9]* failed\$/\1/p" "$log" | tail -1)
    f=$(sed -n "s/^$format: [0-9]* passed, \([0-9]*\) failed\$/\1/p" "$log" | tail -1)
  fi
  if [ "$st" -ne 0 ] || [ "${f:-0}" -ne 0 ]; then note_failure "$title" "$log" "$format"; fi
  rm -f "$log"
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [ "$st" -ne 0 ]; then status=1; [ "${f:-0}" -eq 0 ] && failed=$((failed + 1)); fi
  return 0
}

# A test that passes or fails as a whole, by its exit status (under
# pipefail): one pass or one failure, "NAME ... ok" / "NAME ... FAILED".
# The NOTICE lines of its psql sessions are left out of the output.
run_check() { # TITLE NAME COMMAND...
  local title=$1 name=$2 log
  echo "== $1"; shift 2
  log=$(mktemp "${TMPDIR:-/tmp}/pg_sync_check.XXXXXX")
  if "$@" 2>&1 | grep -v NOTICE | tee "$log"; then
    passed=$((passed + 1)); echo "$name ... ok"
  else
    failed=$((failed + 1)); echo "$name ... FAILED"; status=1
    note_failure "$title" "$log"
  fi
  rm -f "$log"
}
