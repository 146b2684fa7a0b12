# pg_sync — PGXS build. Sources and SQL scripts live in extension/.
MODULE_big = pg_sync
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard extension/*.c)))
MODULEDIR = extension
DATA = extension/pg_sync.control $(sort $(wildcard extension/pg_sync--*.sql))
PG_CONFIG ?= pg_config

PG_CPPFLAGS = -Iextension -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=pg_sync
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --load-extension=pg_sync

EXTRA_CLEAN = results regression.diffs regression.out output_iso

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every source includes the shared header
$(OBJS): extension/pg_sync.h

# the local server of README's first command (variables: README, "The two commands")
.PHONY: run
run:
	bash examples/run.sh

# a development JWT for the local server: make token USER=alice [ROLE=service_role]
# (USER from the environment, the login name, is not taken: only USER=... on the command line)
TOKEN_USER = $(if $(filter command line,$(origin USER)),$(USER),demo-user)
.PHONY: token
token:
	@node examples/dev/token.mjs $(if $(ROLE),--role '$(ROLE)') '$(subst ','\'',$(TOKEN_USER))'

# benchmarks against the physical limit and a PL/pgSQL baseline (see test/bench/README.md)
.PHONY: bench
bench: install
	bash test/bench/run.sh

# 10,000 polling devices through the edge function: the primary alone, with a hot standby, with
# PgBouncer (see test/bench/README.md, "Scale")
.PHONY: bench-scale
bench-scale: install
	PG_CONFIG=$(PG_CONFIG) bash test/bench/scale.sh
