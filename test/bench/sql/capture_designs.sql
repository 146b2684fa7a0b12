-- Change-record designs compared (test/bench/capture_designs.sh): schema,
-- capture triggers, edits and pull queries. Needs no pg_sync: every design
-- is a plain SQL / PL/pgSQL emulation of the storage it writes.
--
-- psql variables: users, per_user, heavy (rows of the user "heavy"),
-- notes_index (columns of the user tables' secondary index).
--
-- Every design has its own copy of the user table, cd.notes_<design>, with
-- the same rows, and its own tracking tables:
--   a   none: no tracking (the baseline)
--   b   current: cd.meta_b, row_meta as the extension has it (PK (table_id,
--       owner, id), index (table_id, owner, xid), partial index (xid) WHERE
--       deleted, fillfactor 90), upserted by a statement trigger
--   c   HOT-able row record: cd.rec_c, the same upsert, only the PK
--   cw  c plus a per-owner watermark cd.owner_cw (table_id, owner) -> xid
--       of the owner's last write, the small structure that tells a pull
--       whether the owner has changes at all
--   d   append-only change log: cd.log_d (table_id, owner, xid, id,
--       deleted), one index (table_id, owner, xid), INSERT only
--   e   d's log (cd.log_e) plus c's record (cd.rec_e)
--   f   a no-op statement trigger with transition tables
--   g   b's storage (cd.meta_g) written by the write statement itself (a
--       data-modifying CTE, no trigger)
--   h   no record: the user table's own rows carry the xid of their last
--       write, in a column (xid) indexed with the owner (owner, xid), set by
--       the write statement itself (no trigger); deletes would leave a
--       tombstone elsewhere (not exercised: the writes insert and update)
--   ht  h's storage, the column set by a BEFORE INSERT OR UPDATE row
--       trigger (PL/pgSQL) instead of the statement
--   hc  h, plus a C row trigger BEFORE INSERT OR UPDATE that sets a column
--       of the new row (contrib's insert_username, on title): what a C
--       trigger stamping the xid would add to a write
--
-- Three designs are written in C, as cheaply as the extension writes its
-- own record (no SQL, the executor's table and index calls):
--   bx  the extension itself: cd.notes_bx registered with pg_sync, its
--       records in _pg_sync.row_meta written by its capture (capture.c)
--   dc  d's log (cd.log_dc), written by a C statement trigger
--       (capture_c/capture_c.c, capture_c_log)
--   dk  dc plus a second index on the log, (table_id, owner, id): what a
--       log needs to be read by key (a push's conflict check by id, paging)
--   hs  h's column, stamped by a C row trigger BEFORE INSERT OR UPDATE
--       (capture_c_stamp): the statement does not set it
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION pg_prewarm;
CREATE EXTENSION pgstattuple;
CREATE SCHEMA cd;

-- the data set of sql/schema.sql (bench.note_id, bench.user_name, bench.source_rows)
\ir rows.sql

CREATE TABLE cd.params (users int, per_user int, heavy int, notes_index text);
INSERT INTO cd.params VALUES (:users, :per_user, :heavy, :'notes_index');

CREATE SEQUENCE cd.wseq;   -- ids of the inserted rows (all designs)

CREATE TABLE cd.design (
    name     text PRIMARY KEY,
    ord      int NOT NULL,
    label    text NOT NULL,
    writes   text NOT NULL,     -- what one written row costs in tracking
    tracking text[] NOT NULL,   -- its tracking tables
    records  text[] NOT NULL    -- of those, the per-row records (HOT ratio)
);
INSERT INTO cd.design VALUES
  ('a',  1, 'A none',            'nothing', '{}', '{}'),
  ('b',  2, 'B current',         'upsert into row_meta (PK + (table_id, owner, xid) + partial (xid) WHERE deleted)',
         '{cd.meta_b}', '{cd.meta_b}'),
  ('bx', 3, 'Bx the extension',  'pg_sync''s own record in _pg_sync.row_meta, written by its C capture',
         '{_pg_sync.row_meta}', '{_pg_sync.row_meta}'),
  ('c',  4, 'C HOT record',      'upsert into a record with only its PK',
         '{cd.rec_c}', '{cd.rec_c}'),
  ('cw', 5, 'Cw C + watermark',  'C, plus an upsert of the owner''s watermark row (PK (table_id, owner))',
         '{cd.rec_cw,cd.owner_cw}', '{cd.rec_cw,cd.owner_cw}'),
  ('d',  6, 'D log',             'insert into a log with one index (table_id, owner, xid)',
         '{cd.log_d}', '{}'),
  ('dc', 7, 'Dc D in C',         'D''s insert, by a C statement trigger',
         '{cd.log_dc}', '{}'),
  ('dk', 8, 'Dk Dc + key index', 'Dc''s insert, into a log with a second index (table_id, owner, id)',
         '{cd.log_dk}', '{}'),
  ('e',  9, 'E log + record',    'D''s insert, plus C''s upsert',
         '{cd.log_e,cd.rec_e}', '{cd.rec_e}'),
  ('f',  10, 'F no-op trigger',   'nothing (the statement trigger and its transition tables only)', '{}', '{}'),
  ('g',  11, 'G B by SQL',       'B''s upsert, in the write statement (data-modifying CTE), no trigger',
         '{cd.meta_g}', '{cd.meta_g}'),
  ('h',  12, 'H xid in the row', 'the row''s own xid column, set by the write statement, in a user-table index (owner, xid)',
         '{}', '{cd.notes_h}'),
  ('ht', 13, 'Ht H by trigger',  'H''s column, set by a BEFORE INSERT OR UPDATE row trigger',
         '{}', '{cd.notes_ht}'),
  ('hc', 14, 'Hc H + C trigger', 'H, plus a C row trigger BEFORE INSERT OR UPDATE setting a column (insert_username)',
         '{}', '{cd.notes_hc}'),
  ('hs', 15, 'Hs H stamped in C', 'H''s column, stamped by a C row trigger BEFORE INSERT OR UPDATE',
         '{}', '{cd.notes_hs}');

-- The source rows: users x per_user rows of ordinary users u00000.. plus
-- the user "heavy" with heavy rows (rows 1..heavy), as in sql/schema.sql.
CREATE TABLE cd.source (
    id         text NOT NULL,
    owner      text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    done       boolean NOT NULL,
    priority   integer NOT NULL,
    score      double precision NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
\echo generating :users users x :per_user rows + :heavy rows of user "heavy"
INSERT INTO cd.source SELECT * FROM bench.source_rows(:users, :per_user, :heavy);

-- id of the m-th row (0-based) of the user who (heavy or u<n>)
CREATE FUNCTION cd.row_id(who text, m int) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN who = 'heavy' THEN bench.note_id(m + 1)
                ELSE bench.note_id(p.heavy + 1 + substr(who, 2)::int + p.users::bigint * m) END
      FROM cd.params p $$;

-- The set of (id, owner, deleted) a statement writes, from its transition
-- tables, as the extension's capture trigger builds it (capture.c): an
-- UPDATE that moves a row to another owner leaves a tombstone under the
-- old one.
CREATE FUNCTION cd.rows_sql(op text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE op
      WHEN 'INSERT' THEN 'SELECT n.id, n.owner, false FROM new_rows n'
      WHEN 'DELETE' THEN 'SELECT o.id, o.owner, true FROM old_rows o'
      ELSE 'SELECT n.id, n.owner, false FROM new_rows n
             UNION ALL
            SELECT o.id, o.owner, true FROM old_rows o
             WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = o.id AND n.owner = o.owner)' END $$;

-- The statements a design's trigger runs for one event (x: the top-level
-- transaction id, read once per statement like the C trigger does).
CREATE FUNCTION cd.capture_sql(d text, op text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    rows text := cd.rows_sql(op);
    upsert text := 'INSERT INTO %s AS m (table_id, id, owner, xid, deleted)
        SELECT 1, r.id, r.owner, x, r.deleted FROM (%s) AS r(id, owner, deleted)
            ON CONFLICT (table_id, id, owner) DO UPDATE
           SET xid = excluded.xid, deleted = excluded.deleted
         WHERE m.xid <> excluded.xid OR m.deleted <> excluded.deleted;';
    logins text := 'INSERT INTO %s (table_id, owner, xid, id, deleted)
        SELECT 1, r.owner, x, r.id, r.deleted FROM (%s) AS r(id, owner, deleted);';
    mark text := 'INSERT INTO %s AS w (table_id, owner, xid)
        SELECT 1, o.owner, x FROM (SELECT DISTINCT r.owner FROM (%s) AS r(id, owner, deleted)) AS o
            ON CONFLICT (table_id, owner) DO UPDATE SET xid = excluded.xid
         WHERE w.xid <> excluded.xid;';
BEGIN
    RETURN CASE d
        WHEN 'b' THEN format(upsert, 'cd.meta_b', rows)
        WHEN 'c' THEN format(upsert, 'cd.rec_c', rows)
        WHEN 'cw' THEN format(upsert, 'cd.rec_cw', rows) || E'\n' || format(mark, 'cd.owner_cw', rows)
        WHEN 'd' THEN format(logins, 'cd.log_d', rows)
        WHEN 'e' THEN format(logins, 'cd.log_e', rows) || E'\n' || format(upsert, 'cd.rec_e', rows)
        WHEN 'f' THEN 'NULL;'
    END;
END $$;

-- A design's trigger function: static SQL (plans cached per session, as the
-- C trigger's SPI plans are), one branch per event.
CREATE FUNCTION cd.make_trigger_function(d text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION cd.capture_%s() RETURNS trigger LANGUAGE plpgsql AS $body$
        DECLARE
            x xid8 := pg_current_xact_id();
        BEGIN
            IF TG_OP = 'INSERT' THEN
                %s
            ELSIF TG_OP = 'UPDATE' THEN
                %s
            ELSE
                %s
            END IF;
            RETURN NULL;
        END $body$ $f$,
        d, cd.capture_sql(d, 'INSERT'), cd.capture_sql(d, 'UPDATE'), cd.capture_sql(d, 'DELETE'));
END $$;

-- cd.notes_<d>: a copy of the source rows in id order, its PK and
-- secondary index; the design's tracking tables, holding a record (or a
-- log entry) for every row as if the rows had been written after
-- registration; the triggers.
CREATE FUNCTION cd.make_design(d text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t text := 'cd.notes_' || d;
    idx text := (SELECT notes_index FROM cd.params);
    rec text := 'table_id integer NOT NULL, id text NOT NULL, owner text NOT NULL, xid xid8 NOT NULL,
                 deleted boolean NOT NULL, origin text, origin_hash bigint, origin_cols text';
    r text;
BEGIN
    EXECUTE format('CREATE TABLE %s (LIKE cd.source)', t);
    IF d = 'bx' THEN
        -- registered before the load: pg_sync records every loaded row
        CREATE EXTENSION IF NOT EXISTS pg_sync;
        ALTER TABLE cd.notes_bx ADD PRIMARY KEY (id);
        EXECUTE format('CREATE INDEX ON %s (%s)', t, idx);
        PERFORM sync_register_table('cd.notes_bx', owner_column => 'owner');
        INSERT INTO cd.notes_bx SELECT * FROM cd.source ORDER BY id;
        RETURN pg_size_pretty(pg_total_relation_size(t));
    END IF;
    IF d IN ('dc', 'dk', 'hs') AND to_regproc('cd.capture_c_log') IS NULL THEN
        CREATE FUNCTION cd.capture_c_log() RETURNS trigger LANGUAGE c AS 'capture_c', 'capture_c_log';
        CREATE FUNCTION cd.capture_c_stamp() RETURNS trigger LANGUAGE c AS 'capture_c', 'capture_c_stamp';
    END IF;
    IF d IN ('h', 'ht', 'hc', 'hs') THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN xid xid8 NOT NULL', t);
        EXECUTE format('INSERT INTO %s SELECT s.*, pg_current_xact_id() FROM cd.source s ORDER BY id', t);
        EXECUTE format('CREATE INDEX %s_changes ON %s (owner, xid)', 'notes_' || d, t);
    ELSE
        EXECUTE format('INSERT INTO %s SELECT * FROM cd.source ORDER BY id', t);
    END IF;
    EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (id)', t);
    EXECUTE format('CREATE INDEX ON %s (%s)', t, idx);

    IF d IN ('b', 'g') THEN
        r := 'cd.meta_' || d;
        EXECUTE format('CREATE TABLE %s (%s) WITH (fillfactor = 90)', r, rec);
        EXECUTE format('INSERT INTO %s (table_id, id, owner, xid, deleted)
                        SELECT 1, id, owner, pg_current_xact_id(), false FROM %s ORDER BY id', r, t);
        EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (table_id, owner, id)', r);
        EXECUTE format('CREATE INDEX %s_changes ON %s (table_id, owner, xid)', 'meta_' || d, r);
        EXECUTE format('CREATE INDEX %s_tombstones ON %s (xid) WHERE deleted', 'meta_' || d, r);
    END IF;
    IF d IN ('c', 'cw', 'e') THEN
        r := 'cd.rec_' || d;
        EXECUTE format('CREATE TABLE %s (%s) WITH (fillfactor = 90)', r, rec);
        EXECUTE format('INSERT INTO %s (table_id, id, owner, xid, deleted)
                        SELECT 1, id, owner, pg_current_xact_id(), false FROM %s ORDER BY id', r, t);
        EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (table_id, owner, id)', r);
    END IF;
    IF d = 'cw' THEN
        -- small and updated by every write of its owner: half-empty pages
        -- leave room for HOT updates
        CREATE TABLE cd.owner_cw (table_id integer NOT NULL, owner text NOT NULL, xid xid8 NOT NULL,
                                  PRIMARY KEY (table_id, owner)) WITH (fillfactor = 50);
        INSERT INTO cd.owner_cw SELECT DISTINCT 1, owner, pg_current_xact_id() FROM cd.notes_cw ORDER BY 2;
    END IF;
    IF d IN ('d', 'dc', 'dk', 'e') THEN
        r := 'cd.log_' || d;
        EXECUTE format('CREATE TABLE %s (table_id integer NOT NULL, owner text NOT NULL, xid xid8 NOT NULL,
                                         id text NOT NULL, deleted boolean NOT NULL)', r);
        EXECUTE format('INSERT INTO %s SELECT 1, owner, pg_current_xact_id(), id, false FROM %s ORDER BY id', r, t);
        EXECUTE format('CREATE INDEX %s_changes ON %s (table_id, owner, xid)', 'log_' || d, r);
        IF d = 'dk' THEN
            CREATE INDEX log_dk_keys ON cd.log_dk (table_id, owner, id);
        END IF;
    END IF;

    IF d = 'ht' THEN
        CREATE FUNCTION cd.stamp_ht() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN
            NEW.xid := pg_current_xact_id();
            RETURN NEW;
        END $body$;
        CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON cd.notes_ht
            FOR EACH ROW EXECUTE FUNCTION cd.stamp_ht();
    END IF;
    IF d = 'hc' THEN
        CREATE EXTENSION IF NOT EXISTS insert_username;
        CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON cd.notes_hc
            FOR EACH ROW EXECUTE FUNCTION insert_username(title);
    END IF;
    IF d = 'hs' THEN
        CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON cd.notes_hs
            FOR EACH ROW EXECUTE FUNCTION cd.capture_c_stamp('xid');
    END IF;
    IF d IN ('dc', 'dk') THEN
        EXECUTE format('CREATE TRIGGER capture_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cd.capture_c_log(%L, ''id'', ''owner'')', t, 'cd.log_' || d);
        EXECUTE format('CREATE TRIGGER capture_update AFTER UPDATE ON %s
                        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cd.capture_c_log(%L, ''id'', ''owner'')', t, 'cd.log_' || d);
        EXECUTE format('CREATE TRIGGER capture_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cd.capture_c_log(%L, ''id'', ''owner'')', t, 'cd.log_' || d);
    END IF;
    IF d IN ('b', 'c', 'cw', 'd', 'e', 'f') THEN
        PERFORM cd.make_trigger_function(d);
        EXECUTE format('CREATE TRIGGER capture_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cd.capture_%s()', t, d);
        EXECUTE format('CREATE TRIGGER capture_update AFTER UPDATE ON %s
                        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cd.capture_%s()', t, d);
        EXECUTE format('CREATE TRIGGER capture_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cd.capture_%s()', t, d);
    END IF;
    RETURN pg_size_pretty(pg_total_relation_size(t));
END $$;

-- Every relation of a design: its user table, the tracking tables, and
-- their indexes.
CREATE FUNCTION cd.rels(d text)
RETURNS TABLE (role text, tbl regclass, rel regclass, kind text) LANGUAGE sql STABLE AS $$
    WITH t(role, tbl) AS (
        SELECT 'user table', format('cd.notes_%s', d)::regclass
        UNION ALL
        SELECT 'tracking', x::regclass FROM cd.design, unnest(tracking) AS x WHERE name = d)
    SELECT role, tbl, tbl, 'heap' FROM t
    UNION ALL
    SELECT role, tbl, i.indexrelid::regclass, 'index' FROM t JOIN pg_index i ON i.indrelid = t.tbl $$;

-- The statements of the benchmark's writes into design d (pgbench scripts
-- and edits): an INSERT of a new row, an UPDATE of row $1. Design g writes
-- its row_meta in the same statement, designs h and hc the row's xid column.
CREATE FUNCTION cd.write_sql(d text, op text, id_expr text, owner_expr text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    w text;
    stamp boolean := d IN ('h', 'hc');   -- the statement sets the row's xid column
BEGIN
    IF op = 'insert' THEN
        w := format($s$INSERT INTO cd.notes_%s (id, owner, title, body, done, priority, score, created_at, updated_at%s)
VALUES (%s, %s, 'Written note',
        'A note written by the write-overhead test; its body is about one hundred bytes long, like the rest.',
        false, 7, 2.5, now(), now()%s)$s$, d, CASE WHEN stamp THEN ', xid' ELSE '' END, id_expr, owner_expr,
                    CASE WHEN stamp THEN ', pg_current_xact_id()' ELSE '' END);
    ELSE
        w := format($s$UPDATE cd.notes_%s SET title = 'Edited note', updated_at = now()%s WHERE id = %s$s$,
                    d, CASE WHEN stamp THEN ', xid = pg_current_xact_id()' ELSE '' END, id_expr);
    END IF;
    IF d <> 'g' THEN
        RETURN w;
    END IF;
    RETURN format($s$WITH w AS (%s RETURNING id, owner)
INSERT INTO cd.meta_g AS m (table_id, id, owner, xid, deleted)
SELECT 1, w.id, w.owner, pg_current_xact_id(), false FROM w
    ON CONFLICT (table_id, id, owner) DO UPDATE SET xid = excluded.xid, deleted = excluded.deleted
 WHERE m.xid <> excluded.xid OR m.deleted <> excluded.deleted$s$, w);
END $$;

-- Edits for the pull measurements: rows 0..n-1 of the user who, each
-- updated `edits` times, one transaction per update (every change its own
-- xid), in every design given.
CREATE PROCEDURE cd.edit(designs text[], who text, n int, edits int) LANGUAGE plpgsql AS $$
DECLARE
    d text;
BEGIN
    FOR e IN 1..edits LOOP
        FOR m IN 0..n - 1 LOOP
            FOREACH d IN ARRAY designs LOOP
                EXECUTE cd.write_sql(d, 'update', '$1', NULL) USING cd.row_id(who, m);
                COMMIT;
            END LOOP;
        END LOOP;
    END LOOP;
END $$;

-- The query that finds the ids of the user who that changed since the
-- token snap, in design d: what a pull runs before it reads the rows.
CREATE FUNCTION cd.changes_sql(d text, who text, snap pg_snapshot) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    since text := format('xid >= pg_snapshot_xmin(%L::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, %L::pg_snapshot)',
                         snap, snap);
BEGIN
    IF d IN ('h', 'ht', 'hc', 'hs') THEN
        -- range scan of the user table's (owner, xid)
        RETURN format('SELECT id, false FROM cd.notes_%s WHERE owner = %L AND %s', d, who, since);
    END IF;
    IF d IN ('d', 'dc', 'dk', 'e') THEN
        -- range scan of the log, the last entry of each id
        RETURN format('SELECT DISTINCT ON (id) id, deleted FROM cd.log_%s
                        WHERE table_id = 1 AND owner = %L AND %s ORDER BY id, xid DESC', d, who, since);
    END IF;
    RETURN CASE d
        -- range scan of (table_id, owner, xid)
        WHEN 'b' THEN format('SELECT id, deleted FROM cd.meta_b WHERE table_id = 1 AND owner = %L AND %s', who, since)
        WHEN 'g' THEN format('SELECT id, deleted FROM cd.meta_g WHERE table_id = 1 AND owner = %L AND %s', who, since)
        WHEN 'bx' THEN format('SELECT id, deleted FROM _pg_sync.row_meta WHERE table_id = %s AND owner = %L AND %s',
                              (SELECT table_id FROM _pg_sync.tables WHERE relid = 'cd.notes_bx'::regclass), who, since)
        -- every record of the owner, filtered
        WHEN 'c' THEN format('SELECT id, deleted FROM cd.rec_c WHERE table_id = 1 AND owner = %L AND %s', who, since)
        -- the owner's watermark first: an owner without changes costs one lookup
        WHEN 'cw' THEN format('SELECT id, deleted FROM cd.rec_cw
                                WHERE EXISTS (SELECT FROM cd.owner_cw w WHERE w.table_id = 1 AND w.owner = %L
                                                 AND NOT pg_visible_in_snapshot(w.xid, %L::pg_snapshot))
                                  AND table_id = 1 AND owner = %L AND %s', who, snap, who, since)
    END;
END $$;

-- raw results
CREATE TABLE cd.run (
    design text NOT NULL, op text NOT NULL, round int NOT NULL, pos int NOT NULL,
    tps float8 NOT NULL, lat_ms float8 NOT NULL, txns bigint NOT NULL, wal_bytes float8 NOT NULL,
    cpu_s float8 NOT NULL       -- CPU time of the run's backends
);
-- bytes: pg_relation_size; tuples, tuple_bytes: tuple versions (heap) or
-- index entries, live or dead, and their length (pgstattuple; not taken
-- after the load)
CREATE TABLE cd.size (
    phase text NOT NULL, design text NOT NULL, role text NOT NULL, tbl text NOT NULL,
    rel text NOT NULL, kind text NOT NULL, bytes bigint NOT NULL, tuples bigint, tuple_bytes bigint
);
CREATE TABLE cd.tabstat (
    phase text NOT NULL, design text NOT NULL, tbl text NOT NULL,
    n_tup_ins bigint, n_tup_upd bigint, n_tup_hot_upd bigint
);
CREATE TABLE cd.pull (
    design text NOT NULL, who text NOT NULL, changed int NOT NULL, rep int NOT NULL,
    ms float8 NOT NULL, buffers bigint NOT NULL, plan text NOT NULL
);

CREATE FUNCTION cd.snap_sizes(ph text, d text, tuples boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF tuples THEN
        INSERT INTO cd.size
        SELECT ph, d, r.role, r.tbl::text, r.rel::text, r.kind, pg_relation_size(r.rel),
               s.tuple_count + s.dead_tuple_count, s.tuple_len + s.dead_tuple_len
          FROM cd.rels(d) AS r, pgstattuple(r.rel) AS s;
    ELSE
        INSERT INTO cd.size
        SELECT ph, d, r.role, r.tbl::text, r.rel::text, r.kind, pg_relation_size(r.rel)
          FROM cd.rels(d) AS r;
    END IF;
END $$;
CREATE FUNCTION cd.snap_stats(ph text, d text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_stat_clear_snapshot();
    INSERT INTO cd.tabstat
    SELECT ph, d, s.relid::regclass::text, s.n_tup_ins, s.n_tup_upd, s.n_tup_hot_upd
      FROM pg_stat_user_tables s
     WHERE s.relid IN (SELECT tbl FROM cd.rels(d) WHERE kind = 'heap') $$;

-- Times the change query of design d, reps times after 3 warm-up runs:
-- execution time and shared buffers (hit + read) from EXPLAIN (ANALYZE,
-- BUFFERS); checks that it finds exactly `expect` ids.
CREATE FUNCTION cd.measure_pull(d text, who text, snap pg_snapshot, expect int, reps int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    q text := cd.changes_sql(d, who, snap);
    j jsonb;
    p jsonb;
BEGIN
    FOR i IN -2..reps LOOP
        EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) ' || q INTO j;
        p := j -> 0 -> 'Plan';
        IF (p ->> 'Actual Rows')::int <> expect THEN
            RAISE EXCEPTION 'design %: the changes of % since the token: % ids, expected %',
                d, who, p ->> 'Actual Rows', expect;
        END IF;
        IF i >= 1 THEN
            INSERT INTO cd.pull VALUES (d, who, expect, i, (j -> 0 ->> 'Execution Time')::float8,
                (p ->> 'Shared Hit Blocks')::bigint + (p ->> 'Shared Read Blocks')::bigint,
                (SELECT string_agg(n #>> '{}', ' < ') FROM jsonb_path_query(p, 'strict $.**."Node Type"') AS n));
        ELSIF i = -2 THEN
            -- the first run after the edits (it may mark dead index entries)
            INSERT INTO cd.pull VALUES (d, who, expect, 0, (j -> 0 ->> 'Execution Time')::float8,
                (p ->> 'Shared Hit Blocks')::bigint + (p ->> 'Shared Read Blocks')::bigint,
                (SELECT string_agg(n #>> '{}', ' < ') FROM jsonb_path_query(p, 'strict $.**."Node Type"') AS n));
        END IF;
    END LOOP;
END $$;

-- The pgbench script of design d for op (insert: a new row of a random
-- ordinary user; update: a random row of an ordinary user).
CREATE FUNCTION cd.pgbench_script(d text, op text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE op
        WHEN 'insert' THEN E'\\set u random(0, :users - 1)\n'
             || cd.write_sql(d, op, $q$'w' || nextval('cd.wseq')$q$, 'bench.user_name(:u)') || E';\n'
        ELSE E'\\set k random(:heavy + 1, :heavy + :users * :per_user)\n'
             || cd.write_sql(d, op, 'bench.note_id(:k)', NULL) || E';\n' END $$;
