-- Server-side timing of the cases. Each procedure runs its repetitions in one
-- backend; every call runs in a transaction of its own (COMMIT between calls,
-- as a request would), and clock_timestamp() is read right before the call,
-- right after it, and after its COMMIT. Repetition 0 is a warm-up and is not
-- counted. Within a repetition the implementations run on the same rows, in
-- an order that changes from one repetition to the next so that each runs
-- before each other one in as many repetitions as after it.
--
-- Timings are collected in variables (a write would give the transaction an
-- xid, and sync_pull refuses to run in a transaction that has written) and
-- stored in bench.timing at the end.
\set ON_ERROR_STOP on

-- a JSON claims document for user u
CREATE FUNCTION bench.claims(u text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT json_build_object('sub', u)::text $$;

CREATE FUNCTION bench.ms(a timestamptz, b timestamptz) RETURNS float8
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT extract(epoch FROM b - a)::float8 * 1000 $$;

-- epoch milliseconds of a timestamp (the token of the PL/pgSQL baseline)
CREATE FUNCTION bench.epoch_ms(ts timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT floor(extract(epoch FROM ts) * 1000)::bigint $$;

-- implementations in the order of repetition r: the list rotated by r, and
-- reversed in every other round of n repetitions. Rotations alone put an
-- implementation before the next one in the list in n - 1 of every n
-- repetitions (and the first reader of rows just written pays for pruning
-- their pages and setting their hint bits); with the reversed rounds every
-- implementation runs before each other one in half of every 2n repetitions.
CREATE FUNCTION bench.rotate(impls text[], r int) RETURNS text[]
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT array_agg(l[1 + (i - 1 + r) % cardinality(l)] ORDER BY i)
            FROM (SELECT CASE WHEN (r / cardinality(impls)) % 2 = 0 THEN impls
                              ELSE ARRAY(SELECT impls[j] FROM generate_subscripts(impls, 1, true) AS j) END) AS o(l),
                 generate_series(1, cardinality(impls)) AS i $$;

CREATE FUNCTION bench.store(case_name text, acc text[]) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO bench.timing (case_name, impl, rep, total_ms, call_ms, bytes)
    SELECT case_name, split_part(a, '|', 1), split_part(a, '|', 2)::int,
           split_part(a, '|', 3)::float8, split_part(a, '|', 4)::float8,
           nullif(split_part(a, '|', 5), '')::bigint
      FROM unnest(acc) AS a
$$;

CREATE FUNCTION bench.rec(impl text, rep int, t0 timestamptz, t1 timestamptz, t2 timestamptz, bytes bigint)
    RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT concat_ws('|', impl, rep, bench.ms(t0, t2), bench.ms(t0, t1), coalesce(bytes::text, '')) $$;

-- rows in the "updated" list of a pull result
CREATE FUNCTION bench.n_updated(doc text) RETURNS int
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce(json_array_length(doc::json -> 'changes' -> 'notes' -> 'updated'), 0) $$;

CREATE FUNCTION bench.check(what text, got bigint, want bigint) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF got IS DISTINCT FROM want THEN
        RAISE EXCEPTION 'bench check failed: % returned % rows, expected %', what, got, want;
    END IF;
END
$$;

------------------------------------------------------------------------
-- first pull of the user "heavy" (all of its rows)
------------------------------------------------------------------------
CREATE PROCEDURE bench.case_first_pull(reps int)
    LANGUAGE plpgsql AS $$
DECLARE
    acc    text[] := '{}';
    impl   text;
    v      text;
    t0     timestamptz;
    t1     timestamptz;
    t2     timestamptz;
    o      text := 'heavy';
    n      bigint;
    want   int := (SELECT heavy FROM bench.params);
BEGIN
    FOR r IN 0..reps LOOP
        FOREACH impl IN ARRAY bench.rotate('{pg_sync,limit,limit_exact,plpgsql,read_rows}', r) LOOP
            IF impl = 'pg_sync' THEN
                PERFORM set_config('request.jwt.claims', bench.claims(o), true);
                t0 := clock_timestamp();
                v := sync_pull(NULL)::text;
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                PERFORM bench.check(impl, bench.n_updated(v), want);
            ELSIF impl = 'limit' THEN
                t0 := clock_timestamp();
                SELECT json_agg(t)::text INTO v FROM notes t WHERE t.owner = o;
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                PERFORM bench.check(impl, json_array_length(v::json), want);
            ELSIF impl = 'limit_exact' THEN
                -- the same keys and values as pg_sync (timestamps as epoch ms, no wrapper)
                t0 := clock_timestamp();
                SELECT json_agg(x)::text INTO v
                  FROM (SELECT t.id, t.owner, t.title, t.body, t.done, t.priority, t.score,
                               floor(extract(epoch FROM t.created_at) * 1000)::bigint AS created_at,
                               floor(extract(epoch FROM t.updated_at) * 1000)::bigint AS updated_at
                          FROM notes t WHERE t.owner = o) x;
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                PERFORM bench.check(impl, json_array_length(v::json), want);
            ELSIF impl = 'read_rows' THEN
                -- reference: read the same rows, every column, and make no JSON
                t0 := clock_timestamp();
                SELECT count(*) INTO n FROM notes t WHERE t.owner = o AND t IS NOT NULL;
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                PERFORM bench.check(impl, n, want);
                v := NULL;
            ELSE
                PERFORM set_config('request.jwt.claims', bench.claims(o), true);
                t0 := clock_timestamp();
                v := bench.pull(NULL)::text;
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                PERFORM bench.check(impl, bench.n_updated(v), want);
            END IF;
            acc := acc || bench.rec(impl, r, t0, t1, t2, octet_length(v));
        END LOOP;
    END LOOP;
    PERFORM bench.store('first_pull', acc);
END
$$;

------------------------------------------------------------------------
-- incremental and empty pulls of ordinary users
--   nchanged  rows of the user changed after the token: its first
--             nchanged rows (all of them when nchanged = per_user; 0: an
--             empty pull)
--   reuse     false: the caller's token is the newest checkpoint, so the
--             pull records a new one; true: another client recorded a
--             checkpoint after the changes (as under load), which the pull
--             reuses
-- The caller's token is always older than pg_sync.checkpoint_interval (a
-- pull with a younger token records a new checkpoint in any case).
--   ubase     first user number; repetition r uses a different user
--   spread    where the changed rows end up on disk (nchanged > 0):
--             1: one UPDATE of the user's rows: a new version stays on its
--             row's page when that page has room, the others go together
--             onto the pages the free space map offers (or the table's end);
--             n > 1: the user and the n - 1 users after it change their rows
--             interleaved, as an app's writes arrive: statement m updates
--             row m of each of the n users, so that the user's new row
--             versions (and those of the limit's and the baseline's copies)
--             lie about n rows, a page or more, apart. One transaction
--             either way.
-- After the timed calls of a repetition, the heap pages holding the user's
-- rows (notes, notes_raw, notes_pl) and its change records are counted
-- (bench.metric, key "pages").
------------------------------------------------------------------------
CREATE PROCEDURE bench.case_pull_since(case_name text, reps int, nchanged int, reuse boolean, ubase int,
                                       spread int DEFAULT 1)
    LANGUAGE plpgsql AS $$
DECLARE
    acc    text[] := '{}';
    acc_first text[] := '{}';
    pages  text[] := '{}';
    ids    text[];
    settled boolean;
    n      bigint;
    tid    int := (SELECT t.table_id FROM _pg_sync.tables t WHERE t.relid = 'notes'::regclass);
    u      int;
    impl   text;
    v      text;
    t0     timestamptz;
    t1     timestamptz;
    t2     timestamptz;
    tok    bigint;
    since  timestamptz;
    ms     bigint;
    o      text;
    p      bench.params;
    token_age float8;
BEGIN
    SELECT * INTO p FROM bench.params;
    PERFORM sync_checkpoint();          -- loads the library and its settings
    token_age := extract(epoch FROM current_setting('pg_sync.checkpoint_interval')::interval) + 0.01;
    COMMIT;
    IF nchanged < 0 OR nchanged > p.per_user THEN
        RAISE EXCEPTION 'nchanged must be between 0 and %', p.per_user;
    END IF;
    IF spread < 1 OR spread > p.users THEN
        RAISE EXCEPTION 'spread must be between 1 and the number of users (%)', p.users;
    END IF;
    FOR r IN 0..reps LOOP
        u := (ubase + r * 7919) % p.users;
        o := bench.user_name(u);
        -- the token / timestamp each implementation's client holds, older
        -- than pg_sync.checkpoint_interval like the token of a client that
        -- last synced a while ago
        tok := sync_checkpoint();
        since := clock_timestamp();
        ms := bench.epoch_ms(since);
        COMMIT;
        PERFORM pg_sleep(token_age);
        -- the same changes in the three tables: notes (pg_sync), notes_raw
        -- (the limit) and notes_pl (the baseline)
        IF nchanged = p.per_user AND spread = 1 THEN
            UPDATE notes SET title = title || '*', updated_at = clock_timestamp() WHERE owner = o;
            UPDATE notes_raw SET title = title || '*', updated_at = clock_timestamp() WHERE owner = o;
            UPDATE notes_pl SET title = title || '*', updated_at = clock_timestamp() WHERE owner = o;
            COMMIT;
        ELSIF nchanged > 0 AND spread = 1 THEN
            ids := ARRAY(SELECT bench.user_row_id(u, m, p.users, p.heavy) FROM generate_series(0, nchanged - 1) AS m);
            UPDATE notes SET title = title || '*', updated_at = clock_timestamp() WHERE id = ANY (ids);
            UPDATE notes_raw SET title = title || '*', updated_at = clock_timestamp() WHERE id = ANY (ids);
            UPDATE notes_pl SET title = title || '*', updated_at = clock_timestamp() WHERE id = ANY (ids);
            COMMIT;
        ELSIF nchanged > 0 THEN
            FOR m IN 0..nchanged - 1 LOOP
                ids := ARRAY(SELECT bench.user_row_id((u + j) % p.users, m, p.users, p.heavy)
                               FROM generate_series(0, spread - 1) AS j);
                UPDATE notes SET title = title || '*', updated_at = clock_timestamp() WHERE id = ANY (ids);
                UPDATE notes_raw SET title = title || '*', updated_at = clock_timestamp() WHERE id = ANY (ids);
                UPDATE notes_pl SET title = title || '*', updated_at = clock_timestamp() WHERE id = ANY (ids);
            END LOOP;
            COMMIT;
        END IF;
        IF reuse THEN
            PERFORM sync_checkpoint();
            COMMIT;
        END IF;
        -- Every other repetition, the user's rows are read once before the
        -- timed calls ("settled"), as any query after the writes would: the
        -- first read of a page after an UPDATE prunes it and sets the hint
        -- bits of its rows, which costs the first reader about as much again
        -- as the read itself. In the other repetitions each implementation is
        -- that first reader, of its own table ("first read"). The two are
        -- stored as two cases: <case> and <case>_first.
        settled := r % 2 = 1;
        IF settled AND nchanged > 0 THEN
            SELECT count(*) INTO n FROM notes WHERE owner = o AND title IS NOT NULL;
            SELECT count(*) INTO n FROM notes_raw WHERE owner = o AND title IS NOT NULL;
            SELECT count(*) INTO n FROM notes_pl WHERE owner = o AND title IS NOT NULL;
            COMMIT;
        END IF;
        FOREACH impl IN ARRAY bench.rotate('{pg_sync,limit,plpgsql}', r / 2) LOOP
            IF impl = 'pg_sync' THEN
                PERFORM set_config('request.jwt.claims', bench.claims(o), true);
                t0 := clock_timestamp();
                v := sync_pull(tok)::text;
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                PERFORM bench.check(impl, bench.n_updated(v), nchanged);
            ELSIF impl = 'limit' THEN
                t0 := clock_timestamp();
                SELECT json_agg(t)::text INTO v FROM notes_raw t WHERE t.owner = o AND t.updated_at > since;
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                PERFORM bench.check(impl, coalesce(json_array_length(v::json), 0), nchanged);
            ELSE
                PERFORM set_config('request.jwt.claims', bench.claims(o), true);
                t0 := clock_timestamp();
                v := bench.pull(ms)::text;
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                PERFORM bench.check(impl, bench.n_updated(v), nchanged);
            END IF;
            IF settled OR nchanged = 0 THEN
                acc := acc || bench.rec(impl, r, t0, t1, t2, octet_length(v));
            ELSE
                acc_first := acc_first || bench.rec(impl, r, t0, t1, t2, octet_length(v));
            END IF;
        END LOOP;
        IF nchanged > 0 THEN
            pages := pages
                || concat_ws('|', 'notes', r, (SELECT count(DISTINCT (ctid::text::point)[0]) FROM notes WHERE owner = o))
                || concat_ws('|', 'notes_raw', r, (SELECT count(DISTINCT (ctid::text::point)[0]) FROM notes_raw WHERE owner = o))
                || concat_ws('|', 'notes_pl', r, (SELECT count(DISTINCT (ctid::text::point)[0]) FROM notes_pl WHERE owner = o))
                || concat_ws('|', 'row_meta', r, (SELECT count(DISTINCT (ctid::text::point)[0]) FROM _pg_sync.row_meta
                                                   WHERE table_id = tid AND owner = o));
            COMMIT;
        END IF;
    END LOOP;
    PERFORM bench.store(case_name, acc);
    PERFORM bench.store(case_name || '_first', acc_first);
    INSERT INTO bench.metric (case_name, impl, key, value, note)
    SELECT case_name, split_part(a, '|', 1), 'pages', split_part(a, '|', 3)::float8, 'rep ' || split_part(a, '|', 2)
      FROM unnest(pages) AS a
     WHERE split_part(a, '|', 2)::int > 0;
END
$$;

------------------------------------------------------------------------
-- pushes of n records of the user "heavy": n/2 created, n/4 updated,
-- n/4 deleted; every repetition takes fresh rows of bench.heavy_pool
------------------------------------------------------------------------
CREATE SEQUENCE bench.pool_cursor START 1;

-- the next slice of n/2 rows of the pool: its first row number
CREATE FUNCTION bench.take_slice(n int) RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    s int;
BEGIN
    s := nextval('bench.pool_cursor');
    PERFORM setval('bench.pool_cursor', s + n / 2);
    IF s + n / 2 - 1 > (SELECT heavy FROM bench.params) THEN
        RAISE EXCEPTION 'the heavy user has too few rows for the pushes (raise HEAVY)';
    END IF;
    RETURN s;
END
$$;

-- A WatermelonDB push document: raw records as the client sends them.
CREATE FUNCTION bench.push_doc(n int, slice int, tag text) RETURNS text
    LANGUAGE sql STABLE AS $$
SELECT json_build_object('notes', json_build_object(
    'created', (SELECT coalesce(json_agg(json_build_object(
                    'id', tag || '-' || j,
                    'owner', 'heavy',
                    'title', 'Pushed note ' || j,
                    'body', substr(repeat(md5(tag || j) || ' ', 3), 1, 100),
                    'done', j % 2 = 0,
                    'priority', j % 1000,
                    'score', (j / 3.0)::float8,
                    'created_at', 1718000000000 + j * 1000,
                    'updated_at', 1718000000000 + j * 1000,
                    '_status', 'created',
                    '_changed', '') ORDER BY j), '[]')
                  FROM generate_series(1, n / 2) AS j),
    'updated', (SELECT coalesce(json_agg(json_build_object(
                    'id', p.id,
                    'owner', 'heavy',
                    'title', 'Edited note ' || p.rn,
                    'body', substr(repeat(md5(tag || p.id) || ' ', 3), 1, 100),
                    'done', true,
                    'priority', p.rn % 1000,
                    'score', (p.rn / 9.0)::float8,
                    'created_at', 1704067200000 + p.rn * 1000,
                    'updated_at', 1718000000000 + p.rn,
                    '_status', 'updated',
                    '_changed', 'title,body,done,priority,score,updated_at') ORDER BY p.rn), '[]')
                  FROM bench.heavy_pool p
                 WHERE p.rn >= slice AND p.rn < slice + n / 4),
    'deleted', (SELECT coalesce(json_agg(p.id ORDER BY p.rn), '[]')
                  FROM bench.heavy_pool p
                 WHERE p.rn >= slice + n / 4 AND p.rn < slice + n / 2)))::text
$$;

-- The physical limit of a push: the same document upserted into the
-- untracked copy with plain SQL, no sync logic. Returns the rows written.
CREATE FUNCTION bench.limit_push(doc text) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    j  jsonb := doc::jsonb;
    c1 bigint;
    c2 bigint;
BEGIN
    INSERT INTO notes_raw AS t (id, owner, title, body, done, priority, score, created_at, updated_at)
    SELECT x.id, x.owner, x.title, x.body, x.done, x.priority, x.score,
           timestamptz 'epoch' + x.created_at * interval '1 millisecond',
           timestamptz 'epoch' + x.updated_at * interval '1 millisecond'
      FROM (SELECT * FROM jsonb_to_recordset(j -> 'notes' -> 'created')
                       AS r(id text, owner text, title text, body text, done boolean,
                            priority integer, score float8, created_at bigint, updated_at bigint)
            UNION ALL
            SELECT * FROM jsonb_to_recordset(j -> 'notes' -> 'updated')
                       AS r(id text, owner text, title text, body text, done boolean,
                            priority integer, score float8, created_at bigint, updated_at bigint)) x
    ON CONFLICT (id) DO UPDATE
       SET owner = excluded.owner, title = excluded.title, body = excluded.body,
           done = excluded.done, priority = excluded.priority, score = excluded.score,
           created_at = excluded.created_at, updated_at = excluded.updated_at;
    GET DIAGNOSTICS c1 = ROW_COUNT;
    DELETE FROM notes_raw WHERE id IN (SELECT jsonb_array_elements_text(j -> 'notes' -> 'deleted'));
    GET DIAGNOSTICS c2 = ROW_COUNT;
    RETURN c1 + c2;
END
$$;

-- Pushes of n records by the user "heavy" (all its rows with a change
-- record), naming the device (client_id) and not, in turn; one
-- session, so that the plan cache has settled on its plans for the
-- device's statements after the first pushes. Repetition 0 is a warm-up.
CREATE PROCEDURE bench.case_push_device(case_name text, n int, reps int)
    LANGUAGE plpgsql AS $$
DECLARE
    acc    text[] := '{}';
    impl   text;
    v      text;
    doc    text;
    t0     timestamptz;
    t1     timestamptz;
    t2     timestamptz;
    tok    bigint;
    want   text := format('{"created":%s,"updated":%s,"deleted":%s}', n / 2, n / 4, n / 4);
BEGIN
    FOR r IN 0..reps LOOP
        FOREACH impl IN ARRAY bench.rotate('{device,anonymous}', r) LOOP
            doc := bench.push_doc(n, bench.take_slice(n), format('d%s-%s-%s', n, r, impl));
            tok := sync_checkpoint();
            COMMIT;
            PERFORM set_config('request.jwt.claims', bench.claims('heavy'), true);
            t0 := clock_timestamp();
            IF impl = 'device' THEN
                v := sync_push(doc::json, tok, client_id => 'bench-device')::text;
            ELSE
                v := sync_push(doc::json, tok)::text;
            END IF;
            t1 := clock_timestamp();
            COMMIT;
            t2 := clock_timestamp();
            IF v <> want THEN
                RAISE EXCEPTION 'bench check failed: sync_push returned %, expected %', v, want;
            END IF;
            IF r > 0 THEN
                acc := acc || bench.rec(impl, r, t0, t1, t2, octet_length(doc));
            END IF;
        END LOOP;
    END LOOP;
    PERFORM bench.store(case_name, acc);
END
$$;

CREATE PROCEDURE bench.case_push(case_name text, n int, reps int)
    LANGUAGE plpgsql AS $$
DECLARE
    acc    text[] := '{}';
    impl   text;
    v      text;
    doc    text;
    t0     timestamptz;
    t1     timestamptz;
    t2     timestamptz;
    tok    bigint;
    ms     bigint;
    c1     bigint;
    want   text := format('{"created":%s,"updated":%s,"deleted":%s}', n / 2, n / 4, n / 4);
    cap    text;
BEGIN
    FOR r IN 0..reps LOOP
        doc := bench.push_doc(n, bench.take_slice(n), format('p%s-%s', n, r));
        COMMIT;
        FOREACH impl IN ARRAY bench.rotate('{pg_sync,limit,plpgsql}', r) LOOP
            IF impl = 'pg_sync' THEN
                -- first the same push twice, rolled back, its change records
                -- written directly (the default) and by SQL
                -- (pg_sync.direct_capture off), in an order that alternates
                FOREACH cap IN ARRAY CASE WHEN r % 2 = 0 THEN '{on,off}'::text[] ELSE '{off,on}'::text[] END LOOP
                    tok := sync_checkpoint();
                    COMMIT;
                    PERFORM set_config('request.jwt.claims', bench.claims('heavy'), true);
                    PERFORM set_config('pg_sync.direct_capture', cap, true);
                    t0 := clock_timestamp();
                    v := sync_push(doc::json, tok)::text;
                    t1 := clock_timestamp();
                    ROLLBACK;
                    IF v <> want THEN
                        RAISE EXCEPTION 'bench check failed: sync_push returned %, expected %', v, want;
                    END IF;
                    acc := acc || bench.rec(CASE cap WHEN 'on' THEN 'capture_direct' ELSE 'capture_sql' END,
                                            r, t0, t1, t1, octet_length(doc));
                END LOOP;
                tok := sync_checkpoint();       -- a fresh token, as from a pull
                COMMIT;
                PERFORM set_config('request.jwt.claims', bench.claims('heavy'), true);
                t0 := clock_timestamp();
                v := sync_push(doc::json, tok)::text;
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                IF v <> want THEN
                    RAISE EXCEPTION 'bench check failed: sync_push returned %, expected %', v, want;
                END IF;
            ELSIF impl = 'limit' THEN
                t0 := clock_timestamp();
                c1 := bench.limit_push(doc);
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
                PERFORM bench.check('limit push', c1, n);
            ELSE
                ms := bench.epoch_ms(clock_timestamp());   -- a fresh token, as from a pull
                PERFORM set_config('request.jwt.claims', bench.claims('heavy'), true);
                t0 := clock_timestamp();
                PERFORM bench.push(doc::jsonb, ms);
                t1 := clock_timestamp();
                COMMIT;
                t2 := clock_timestamp();
            END IF;
            acc := acc || bench.rec(impl, r, t0, t1, t2, octet_length(doc));
        END LOOP;
    END LOOP;
    PERFORM bench.store(case_name, acc);
END
$$;
