-- The one backend session of the memory test (test/memory/run.sh): warm-up,
-- then the three phases, with a measurement of this backend before and after
-- each. The failing pushes commit every `batch` iterations, the other
-- phases after every push and every pull; each measurement is a statement
-- (a transaction) of its own. Variables: n, warm, batch.
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
SELECT mem_sample('start');
-- pg_sync 0.1 answered pulls from a checkpoint up to 100 ms old (a token
-- that may not contain the push just before); 0 makes every pull exact there.
-- (No effect since 0.2, where pulls are always exact.)
SET pg_sync.checkpoint_interval = 0;

-- warm-up: every kind of operation a few times, and more distinct column
-- sets than a table keeps plans for (64 > 32), so that caches are full
CALL mem_failing_pushes('warm-up', :warm, :batch);
CALL mem_sync_rounds('w-', :warm);
CALL mem_column_sets('wc-', 16383 - 63, 64);
SELECT mem_sample('warm');

-- phase 1: n failing pushes of each of 7 kinds
CALL mem_failing_pushes('phase 1', :n, :batch);
SELECT mem_sample('failing');

-- phase 2: n successful pushes, each followed by an incremental pull
CALL mem_sync_rounds('s-', :n);
SELECT mem_sample('sync');

-- phase 3: n pushes, each with a column set of its own
CALL mem_column_sets('c-', 1, :n);
SELECT mem_sample('colsets');
