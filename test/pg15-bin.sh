# Sourced by the suites' run scripts: puts PostgreSQL 15's binaries first on PATH, taken from
# PG_CONFIG when it is set, else from the pg_config already on PATH when that one is 15's (a
# relocated or self-built server), else Debian's /usr/lib/postgresql/15.
if [ -z "${PG_CONFIG:-}" ]; then
  if command -v pg_config >/dev/null && pg_config --version 2>/dev/null | grep -q ' 15\.'; then
    PG_CONFIG=$(command -v pg_config)
  else
    PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
  fi
fi
PATH="$("$PG_CONFIG" --bindir):$PATH"
export PATH PG_CONFIG
