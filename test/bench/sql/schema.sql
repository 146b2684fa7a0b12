-- Benchmark schema and deterministic data.
-- psql variables: users, per_user (rows of each ordinary user), heavy (rows of
-- the user "heavy").
--
-- Three tables hold the same rows:
--   notes      registered with pg_sync (owner-scoped)
--   notes_raw  untracked copy: the physical limit for pushes, and the
--              unregistered table of the write-overhead test
--   notes_pl   copy for the PL/pgSQL baseline (server timestamps + soft
--              deletes maintained by a trigger, see baseline.sql)
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION pg_sync;
CREATE SCHEMA bench;

CREATE TABLE notes (
    id         text PRIMARY KEY,
    owner      text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    done       boolean NOT NULL,
    priority   integer NOT NULL,
    score      double precision NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX notes_owner ON notes (owner);
SELECT sync_register_table('notes', owner_column => 'owner') \g /dev/null

CREATE TABLE notes_raw (LIKE notes INCLUDING ALL);

CREATE TABLE notes_pl (
    LIKE notes INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    server_created_at timestamptz NOT NULL DEFAULT now(),
    last_modified_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    PRIMARY KEY (id)
);
CREATE INDEX notes_pl_owner_modified ON notes_pl (owner, last_modified_at);

-- the data set (bench.note_id, bench.user_name, bench.source_rows)
\ir rows.sql
-- id of the m-th row (0-based) of ordinary user u
CREATE FUNCTION bench.user_row_id(u bigint, m bigint, users bigint, heavy bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT bench.note_id(heavy + 1 + u + users * m) $$;

CREATE TABLE bench.params (users int, per_user int, heavy int);
INSERT INTO bench.params VALUES (:users, :per_user, :heavy);

\echo loading :users users x :per_user rows + :heavy rows of user "heavy" into notes (registered)
BEGIN;
INSERT INTO notes
SELECT * FROM bench.source_rows(:users, :per_user, :heavy) ORDER BY 1;
COMMIT;

\echo copying into notes_raw and notes_pl
INSERT INTO notes_raw SELECT * FROM notes ORDER BY id;
INSERT INTO notes_pl (id, owner, title, body, done, priority, score, created_at, updated_at)
SELECT * FROM notes ORDER BY id;

-- the heavy user's original rows, in a fixed order: pushes take slices of it
CREATE TABLE bench.heavy_pool (rn int PRIMARY KEY, id text NOT NULL);
INSERT INTO bench.heavy_pool SELECT i, bench.note_id(i) FROM generate_series(1, :heavy) AS i;

CREATE SEQUENCE bench.wseq;   -- ids of the write-overhead inserts
CREATE SEQUENCE bench.mseq;   -- ids created by the mixed load

-- raw timings of the server-side cases
CREATE TABLE bench.timing (
    case_name text NOT NULL,
    impl      text NOT NULL,
    rep       int NOT NULL,
    total_ms  float8 NOT NULL,   -- call + COMMIT
    call_ms   float8 NOT NULL,   -- call alone
    bytes     bigint
);
-- other measurements (pgbench, memory), one value each
CREATE TABLE bench.metric (
    case_name text NOT NULL,
    impl      text NOT NULL,
    key       text NOT NULL,
    value     float8,
    note      text
);
