#!/usr/bin/env bash
# Compiles every extension/*.c against the server headers of several
# PostgreSQL major versions and fails on any warning or error.
#
# The extension is built and tested against the installed PostgreSQL 15, and
# against Debian's 17 and 18 by test/versions/run.sh; this checks that it
# also compiles cleanly against versions no Debian release ships (14, 16).
# It is not part of CI: it needs configured source trees.
#
# Preparing a tree, for each version N (14, 15, 16, 17):
#   git archive REL_N_STABLE (of PostgreSQL's git repository) into a folder
#   cd into it; ./configure --without-icu --without-readline --without-zlib --with-openssl
#   make -C src/backend generated-headers     # pg_config.h, fmgroids.h, errcodes.h, probes.h ...
# (building the server is not needed).
#
# Usage:
#   PGSRC_14=/path/to/14 PGSRC_16=/path/to/16 PGSRC_17=/path/to/17 test/pgversions.sh
# Any of PGSRC_14 .. PGSRC_18 may be set; PG_CONFIG (default: pg_config, if
# found) adds the installed server's headers as a baseline.
#
# Flags: each tree's own CC, CFLAGS, CFLAGS_SL, CFLAGS_SL_MODULE and CPPFLAGS
# (src/Makefile.global: what PGXS of that version uses; -O2 included, so
# that warnings such as -Wmaybe-uninitialized show) plus the PG_CPPFLAGS of
# the project's Makefile (-Wall -Wextra ...). Objects go to /dev/null.
set -u
cd "$(dirname "$0")/.." || exit 2

proj_flags=$(sed -n 's/^PG_CPPFLAGS[[:space:]]*=[[:space:]]*//p' Makefile)
[ -n "$proj_flags" ] || { echo "no PG_CPPFLAGS in Makefile" >&2; exit 2; }

# a variable of a configured tree's src/Makefile.global
tree_var() {
	make -s --no-print-directory -C "$1" -f - print <<EOF
top_builddir = .
include src/Makefile.global
print: ; @echo \$($2)
EOF
}

fail=0
checked=0

# check NAME CC "CFLAGS" "CPPFLAGS" INCDIR...
check() {
	local name=$1 cc=$2 cflags=$3 cppflags=$4 out f n=0 files=0
	shift 4
	local inc=()
	for d in "$@"; do inc+=("-I$d"); done
	for f in extension/*.c; do
		files=$((files + 1))
		# shellcheck disable=SC2086
		if ! out=$($cc $cflags $proj_flags -Iextension "${inc[@]}" $cppflags -c -o /dev/null "$f" 2>&1) ||
			[ -n "$out" ]; then
			printf '%s\n' "$out"
			n=$((n + 1))
		fi
	done
	if [ $n -eq 0 ]; then
		echo "ok   $name: $files files, no warnings"
	else
		echo "FAIL $name: $n file(s) with warnings or errors"
		fail=1
	fi
	checked=$((checked + 1))
}

pgc=${PG_CONFIG:-$(command -v pg_config || true)}
if [ -n "$pgc" ] && ! "$pgc" --version >/dev/null 2>&1; then
	echo "FAIL PG_CONFIG=$pgc does not run"
	fail=1
elif [ -n "$pgc" ]; then
	srv=$("$pgc" --includedir-server)
	check "installed $("$pgc" --version) ($srv)" "$("$pgc" --cc)" \
		"$("$pgc" --cflags) $("$pgc" --cflags_sl)" "$("$pgc" --cppflags)" "$srv" "$("$pgc" --includedir)/internal"
fi

for v in 14 15 16 17 18; do
	var=PGSRC_$v
	tree=${!var:-}
	[ -n "$tree" ] || continue
	if [ ! -f "$tree/src/include/pg_config.h" ] || [ ! -f "$tree/src/include/utils/fmgroids.h" ]; then
		echo "FAIL $var=$tree: not a configured tree with generated headers (see the top of $0)"
		fail=1
		continue
	fi
	ver=$(sed -n 's/^#define PG_VERSION "\(.*\)"$/\1/p' "$tree/src/include/pg_config.h")
	case $ver in
		"$v".*|"$v"devel|"$v"beta*|"$v"rc*) ;;
		*) echo "FAIL $var=$tree is PostgreSQL $ver"; fail=1; continue ;;
	esac
	check "PostgreSQL $ver ($tree)" "$(tree_var "$tree" CC)" \
		"$(tree_var "$tree" CFLAGS) $(tree_var "$tree" CFLAGS_SL) $(tree_var "$tree" CFLAGS_SL_MODULE)" "$(tree_var "$tree" CPPFLAGS | sed -E 's/(^| )-I[^ ]*//g')" \
		"$tree/src/include"
done

if [ $checked -eq 0 ]; then
	echo "nothing checked: set PGSRC_14, PGSRC_16, PGSRC_17 (see the top of $0)" >&2
	exit 2
fi
exit $fail
