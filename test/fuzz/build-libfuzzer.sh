#!/usr/bin/env bash
# Builds extension/decode.c (unchanged) outside the server with clang,
# libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer, linked with
# PostgreSQL's frontend common library (its JSON parser), and optionally runs it.
#
#   bash test/fuzz/build-libfuzzer.sh                 build test/fuzz/out/decode_fuzz
#   bash test/fuzz/build-libfuzzer.sh run [SECONDS]   build, then fuzz for SECONDS (default 600)
#   bash test/fuzz/build-libfuzzer.sh check           build, then run the seed corpus once (regression)
#   bash test/fuzz/build-libfuzzer.sh coverage        line coverage of extension/decode.c by the corpora
#                                                     (a separate build in out/cov, llvm-cov report)
#   bash test/fuzz/build-libfuzzer.sh scaling         build, then time documents of 2,000 to 16,000
#                                                     empty table entries (decode time per size)
#
# Needs (Debian 12): clang-14 libclang-rt-14-dev postgresql-server-dev-15 (installed
# with apt-get when missing). PG_CONFIG picks another PostgreSQL; PG_SYNC_SRC
# another checkout whose extension/ to build (default: this one), e.g. a clean
# `git worktree` while the work tree is being edited.
# Outputs stay in test/fuzz/out/ (build and the growing corpus; in .gitignore).
# Corpus: test/fuzz/corpus/ (hand-written seeds, named by what they are) and
# test/fuzz/corpus-found/ (inputs the long runs found that add coverage, merged
# with -merge=1); the dictionary is test/fuzz/json.dict; crash inputs are
# written to test/fuzz/out/artifacts/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${PG_SYNC_SRC:-$here/../..}" && pwd)
out="$here/out"
mode=${1:-build}
seconds=${2:-600}

need=()
command -v clang-14 >/dev/null || command -v clang >/dev/null || need+=(clang-14)
ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PG_CONFIG" ] || need+=(postgresql-server-dev-15)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
CC=${CC:-$(command -v clang-14 || command -v clang)}
incdir=$("$PG_CONFIG" --includedir-server)
libdir=$("$PG_CONFIG" --pkglibdir)

mkdir -p "$out/obj" "$out/artifacts" "$out/corpus"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cflags="-g -O1 -std=gnu99 -Wall -Wno-unused-command-line-argument -Wno-ignored-attributes $san -I$incdir -I$root/extension -I$here"
# decode.c and the harness get libFuzzer's coverage instrumentation; the stubs too (cheap)
for src in "$root/extension/decode.c" "$here/decode_fuzz.c" "$here/decode_stubs.c"; do
  "$CC" $cflags -fsanitize=fuzzer-no-link -c "$src" -o "$out/obj/$(basename "${src%.c}").o"
done
# libpgcommon.a / libpgport.a: the frontend builds (jsonapi.o with FRONTEND; its
# palloc calls resolve to decode_stubs.c, so fe_memutils.o is not linked)
"$CC" $san -fsanitize=fuzzer "$out/obj/decode.o" "$out/obj/decode_fuzz.o" "$out/obj/decode_stubs.o" \
  "$libdir/libpgcommon.a" "$libdir/libpgport.a" -o "$out/decode_fuzz"
echo "built $out/decode_fuzz"

# Inputs up to 16 KB: enough for every shape and for the record limit the
# harness sets (FUZZ_MAX_RECORDS, default 64). The frontend JSON parser has no
# check_stack_depth(); the harness skips inputs nested deeper than 20,000
# levels, which the server refuses with 54001 before sync_push runs.
opts=(-dict="$here/json.dict" -max_len=16384 -timeout=10 -rss_limit_mb=2048
      -artifact_prefix="$out/artifacts/" -print_final_stats=1)
case "$mode" in
build) ;;
run)
  exec "$out/decode_fuzz" "${opts[@]}" -max_total_time="$seconds" "$out/corpus" "$here/corpus" "$here/corpus-found"
  ;;
check)
  exec "$out/decode_fuzz" "${opts[@]}" -runs=0 "$here/corpus" "$here/corpus-found"
  ;;
coverage)
  cov="$out/cov"; mkdir -p "$cov"
  for src in "$root/extension/decode.c" "$here/decode_fuzz.c" "$here/decode_stubs.c"; do
    "$CC" $cflags -fsanitize=fuzzer-no-link -fprofile-instr-generate -fcoverage-mapping \
      -c "$src" -o "$cov/$(basename "${src%.c}").o"
  done
  "$CC" $san -fsanitize=fuzzer -fprofile-instr-generate "$cov/decode.o" "$cov/decode_fuzz.o" "$cov/decode_stubs.o" \
    "$libdir/libpgcommon.a" "$libdir/libpgport.a" -o "$cov/decode_fuzz"
  rm -f "$cov"/*.profraw
  LLVM_PROFILE_FILE="$cov/run.profraw" "$cov/decode_fuzz" -runs=0 "$here/corpus" "$here/corpus-found" >/dev/null 2>&1
  llvm-profdata-14 merge -sparse "$cov/run.profraw" -o "$cov/run.profdata"
  llvm-cov-14 report "$cov/decode_fuzz" -instr-profile="$cov/run.profdata" "$root/extension/decode.c"
  llvm-cov-14 show "$cov/decode_fuzz" -instr-profile="$cov/run.profdata" "$root/extension/decode.c" \
    -show-line-counts-or-regions > "$cov/decode.c.txt"
  echo "annotated source: $cov/decode.c.txt"
  ;;
scaling)
  # {"t0":{},"t1":{},...}: every table name is compared with all before it
  for n in 2000 4000 8000 16000; do
    python3 -c "import sys; n=$n; sys.stdout.write('{' + ','.join('\"t%d\":{}' % i for i in range(n)) + '}')" > "$out/tables-$n.json"
    printf '%6d table entries, %8d bytes: ' "$n" "$(stat -c %s "$out/tables-$n.json")"
    "$out/decode_fuzz" "$out/tables-$n.json" 2>&1 | sed -n 's/^Executed .* in \([0-9]*\) ms$/\1 ms/p'
  done
  ;;
*) echo "usage: $0 [build|run [SECONDS]|check|scaling]" >&2; exit 2 ;;
esac
