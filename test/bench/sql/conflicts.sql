-- Pushes of conflicting records under each conflict policy.
--
-- Every variant has a table of its own (bench.cf_<variant>, made by
-- bench.cf_setup() and dropped by bench.cf_teardown()), registered with its
-- policy, all with the same columns and the same CF_ROWS rows of the user
-- "heavy" (bench.cf_base). One repetition of a variant, for n records:
--
--   1. the table's conflict inbox emptied; for the baseline "abort" only,
--      rows 1..n reset to their base values by SQL;
--   2. the client's token (sync_checkpoint()) and its document: the n rows
--      as the client edited them, with the versions the rows have now;
--   3. the conflicting server write (all variants but "abort"): one UPDATE
--      by SQL, committed after the token, that sets every column of rows
--      1..n to the same server state whatever earlier pushes left, so each
--      push meets identical rows;
--   4. the push, timed like the other push cases (call, then COMMIT);
--   5. checks that the policy did what it should (result counts and sample
--      rows); a failed check stops the benchmark.
--
-- Every push is preceded by exactly one UPDATE of its n rows (step 1 or 3).
--
-- Within a repetition every variant runs once, in an order that rotates from
-- one repetition to the next; repetition 0 is a warm-up.
--
-- What the client and the server change (row rn):
--   title       server 'server <rn>', client 'client <rn>'
--   priority    base rn % 1000; server base + 1; client base + 5 (even rn)
--               or base - 5 (odd rn)
--   tags        jsonb, base [{"id": "a", "v": 0}]; the server appends
--               {"id": "s"}, the client changes "a" and appends {"id": "c"}
--   updated_at  base 2024-01-01; server 2024-06-01; client 2024-07-01
--               (newer), or 2024-05-01 (older) when rn % 10 = 0
--   version     the client sends the version it saw
\set ON_ERROR_STOP on

CREATE TABLE bench.cf_base (
    rn         int PRIMARY KEY,
    id         text NOT NULL UNIQUE,
    title      text NOT NULL,
    body       text NOT NULL,
    done       boolean NOT NULL,
    priority   integer NOT NULL,
    score      double precision NOT NULL,
    tags       jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
INSERT INTO bench.cf_base
SELECT i, substr(md5('cf' || i), 1, 16), 'Note ' || i,
       substr(repeat(md5('cf' || i) || ' ', 3), 1, 100),
       i % 3 = 0, i % 1000, (i % 997) / 7.0,
       '[{"id": "a", "v": 0}]',
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second'
  FROM generate_series(1, :cf_rows) AS i;

-- the variants: table suffix, policy, options
CREATE TABLE bench.cf_variant (
    name    text PRIMARY KEY,
    ord     int NOT NULL,
    policy  text NOT NULL,
    options jsonb NOT NULL,
    label   text NOT NULL       -- the report's description of the outcome
);
INSERT INTO bench.cf_variant VALUES
 ('abort', 1, 'abort', '{}',
  'baseline: the same records, no conflicting server write; all written'),
 ('abort_detect', 2, 'abort', '{}',
  'fails with SY001 (time to detect the conflict and fail, then ROLLBACK)'),
 ('server_wins', 3, 'server_wins', '{}', 'none written, server rows kept'),
 ('client_wins', 4, 'client_wins', '{}', 'all written'),
 ('last_write_wins', 5, 'last_write_wins', '{"timestamp_column": "updated_at"}',
  '9 in 10 newer on the client (written), 1 in 10 older (server kept)'),
 ('version_client_wins', 6, 'version', '{"version_column": "version", "on_conflict": "client_wins"}',
  'stale versions; all written'),
 ('version_manual', 7, 'version', '{"version_column": "version", "on_conflict": "manual"}',
  'stale versions; all queued in the inbox, server rows kept'),
 ('merge', 8, 'merge', '{"columns": {"title": "latest", "priority": "max", "tags": "append_by_id"}, "timestamp_column": "updated_at"}',
  'merged per column: title latest, priority max, tags append_by_id, the rest client'),
 ('custom_sql', 9, 'custom', '{"function": "bench.cf_custom_sql"}',
  'LANGUAGE sql function: client row with a combined title; all written'),
 ('custom_plpgsql', 10, 'custom', '{"function": "bench.cf_custom_plpgsql"}',
  'the same function in PL/pgSQL; all written'),
 ('manual', 11, 'manual', '{}', 'all queued in the inbox, server rows kept'),
 ('insert_only', 12, 'insert_only', '{}', 'all rejected (experimentalRejectedIds)');

-- the custom policy's functions: the client's row, titled "<server> + <client>"
CREATE FUNCTION bench.cf_custom_sql(table_name text, server jsonb, client jsonb) RETURNS jsonb
    LANGUAGE sql AS $$
    SELECT client || jsonb_build_object('title', (server ->> 'title') || ' + ' || (client ->> 'title'))
$$;
CREATE FUNCTION bench.cf_custom_plpgsql(table_name text, server jsonb, client jsonb) RETURNS jsonb
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN client || jsonb_build_object('title', (server ->> 'title') || ' + ' || (client ->> 'title'));
END
$$;

-- The variants' tables, created and registered when the case starts and
-- dropped when it ends: registered tables are part of every pull, and the
-- other cases are measured without them.
CREATE FUNCTION bench.cf_setup() RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    v bench.cf_variant;
BEGIN
    FOR v IN SELECT * FROM bench.cf_variant ORDER BY ord LOOP
        EXECUTE format('CREATE TABLE bench.%I (
                            id         text PRIMARY KEY,
                            owner      text NOT NULL,
                            title      text NOT NULL,
                            body       text NOT NULL,
                            done       boolean NOT NULL,
                            priority   integer NOT NULL,
                            score      double precision NOT NULL,
                            tags       jsonb NOT NULL,
                            version    integer NOT NULL DEFAULT 1,
                            created_at timestamptz NOT NULL,
                            updated_at timestamptz NOT NULL)', 'cf_' || v.name);
        EXECUTE format('CREATE INDEX ON bench.%I (owner)', 'cf_' || v.name);
        PERFORM sync_register_table(format('bench.%I', 'cf_' || v.name)::regclass, 'owner', v.policy, v.options);
        EXECUTE format('INSERT INTO bench.%I (id, owner, title, body, done, priority, score, tags, created_at, updated_at)
                        SELECT id, ''heavy'', title, body, done, priority, score, tags, created_at, updated_at
                          FROM bench.cf_base ORDER BY id', 'cf_' || v.name);
    END LOOP;
END
$$;

-- (dropping a registered table forgets its change records and conflicts)
CREATE FUNCTION bench.cf_teardown() RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    FOR v IN SELECT name FROM bench.cf_variant ORDER BY ord LOOP
        EXECUTE format('DROP TABLE bench.%I', 'cf_' || v);
    END LOOP;
END
$$;

CREATE FUNCTION bench.cf_table(v text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT format('bench.%I', 'cf_' || v) $$;

-- step 1: no open conflicts; with reset, rows 1..n as they were loaded
CREATE FUNCTION bench.cf_reset(v text, n int, reset boolean) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM _pg_sync.conflicts k
     USING _pg_sync.tables t
     WHERE t.relid = bench.cf_table(v)::regclass AND k.table_id = t.table_id;
    IF reset THEN
        EXECUTE format('UPDATE %s t SET title = b.title, body = b.body, done = b.done, priority = b.priority,
                                         score = b.score, tags = b.tags, created_at = b.created_at,
                                         updated_at = b.updated_at
                          FROM bench.cf_base b
                         WHERE t.id = b.id AND b.rn <= $1', bench.cf_table(v)) USING n;
    END IF;
END
$$;

-- the records as the client edited them, without their version (see above);
-- JSON text without its closing brace
CREATE TABLE bench.cf_client (rn int PRIMARY KEY, id text NOT NULL, head text NOT NULL);
INSERT INTO bench.cf_client
SELECT b.rn, b.id,
       left(json_build_object(
           'id', b.id,
           'owner', 'heavy',
           'title', 'client ' || b.rn,
           'body', b.body,
           'done', b.done,
           'priority', b.priority + CASE WHEN b.rn % 2 = 0 THEN 5 ELSE -5 END,
           'score', b.score,
           'tags', json_build_array(json_build_object('id', 'a', 'v', b.rn),
                                    json_build_object('id', 'c', 'v', b.rn))::text,
           'created_at', bench.epoch_ms(b.created_at),
           'updated_at', bench.epoch_ms(CASE WHEN b.rn % 10 = 0
                                             THEN timestamptz '2024-05-01 00:00:00+00'
                                             ELSE timestamptz '2024-07-01 00:00:00+00' END
                                        + b.rn * interval '1 millisecond'),
           '_status', 'updated',
           '_changed', 'title,priority,tags,updated_at')::text, -1)
  FROM bench.cf_base b;

-- step 2: the push document of records 1..n, with the versions the rows have now
CREATE FUNCTION bench.cf_doc(v text, n int) RETURNS json
    LANGUAGE plpgsql AS $$
DECLARE
    doc json;
BEGIN
    EXECUTE format($q$
        SELECT (%L || string_agg(c.head || ', "version" : ' || t.version || '}', ', ' ORDER BY c.rn)
                   || '], "deleted": []}}')::json
          FROM bench.cf_client c JOIN %s t ON t.id = c.id
         WHERE c.rn <= $1 $q$,
        format('{%s: {"created": [], "updated": [', to_json('cf_' || v)), bench.cf_table(v)) INTO doc USING n;
    RETURN doc;
END
$$;

-- step 3: the server changes the same rows after the client's token, to a
-- state that depends on nothing but the base values
CREATE FUNCTION bench.cf_server_write(v text, n int) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$
        UPDATE %s t SET title = 'server ' || b.rn,
                        body = b.body,
                        done = b.done,
                        priority = b.priority + 1,
                        score = b.score,
                        tags = b.tags || jsonb_build_array(jsonb_build_object('id', 's', 'v', b.rn)),
                        created_at = b.created_at,
                        updated_at = timestamptz '2024-06-01 00:00:00+00' + b.rn * interval '1 millisecond'
          FROM bench.cf_base b
         WHERE t.id = b.id AND b.rn <= $1 $q$, bench.cf_table(v)) USING n;
END
$$;

CREATE FUNCTION bench.cf_expect(v text, what text, got text, want text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF got IS DISTINCT FROM want THEN
        RAISE EXCEPTION 'bench check failed: conflict policy variant %: % is %, expected %', v, what,
                        coalesce(got, 'NULL'), coalesce(want, 'NULL');
    END IF;
END
$$;

-- step 5: the outcome of the push (res: its result; NULL when it failed)
CREATE FUNCTION bench.cf_verify(v text, n int, res json, failed text) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    tbl      text := bench.cf_table(v);
    key      text := 'cf_' || v;
    r1       record;
    r2       record;
    r10      record;
    updated  int;
    nconf    int;
    res_of   jsonb;
    inbox    int;
    rejected int;
BEGIN
    EXECUTE format('SELECT t.* FROM %s t JOIN bench.cf_base b USING (id) WHERE b.rn = 1', tbl) INTO r1;
    EXECUTE format('SELECT t.* FROM %s t JOIN bench.cf_base b USING (id) WHERE b.rn = 2', tbl) INTO r2;
    EXECUTE format('SELECT t.* FROM %s t JOIN bench.cf_base b USING (id) WHERE b.rn = 10', tbl) INTO r10;
    SELECT count(*) INTO inbox
      FROM _pg_sync.conflicts k JOIN _pg_sync.tables t ON t.table_id = k.table_id
     WHERE t.relid = tbl::regclass AND k.resolved_at IS NULL;

    IF v = 'abort_detect' THEN
        PERFORM bench.cf_expect(v, 'the push''s SQLSTATE', failed, 'SY001');
        PERFORM bench.cf_expect(v, 'row 1''s title', r1.title, 'server 1');
        RETURN;
    END IF;
    PERFORM bench.cf_expect(v, 'the push''s error', failed, NULL);
    updated := (res ->> 'updated')::int;
    nconf := coalesce(json_array_length(res -> 'conflicts'), 0);
    rejected := coalesce(json_array_length(res -> 'experimentalRejectedIds' -> key), 0);
    SELECT coalesce(jsonb_object_agg(resolution, k), '{}') INTO res_of
      FROM (SELECT c ->> 'resolution' AS resolution, count(*) AS k
              FROM json_array_elements(res -> 'conflicts') AS c GROUP BY 1) s;
    PERFORM bench.cf_expect(v, 'created + deleted', ((res ->> 'created')::int + (res ->> 'deleted')::int)::text, '0');
    PERFORM bench.cf_expect(v, 'the inbox''s open conflicts', inbox::text,
                            CASE WHEN v IN ('manual', 'version_manual') THEN n ELSE 0 END::text);

    CASE v
    WHEN 'abort' THEN
        PERFORM bench.cf_expect(v, 'the result', res::text, format('{"created":0,"updated":%s,"deleted":0}', n));
        PERFORM bench.cf_expect(v, 'row 1''s title', r1.title, 'client 1');
    WHEN 'server_wins' THEN
        PERFORM bench.cf_expect(v, 'updated', updated::text, '0');
        PERFORM bench.cf_expect(v, 'resolutions', res_of::text, format('{"server": %s}', n));
        PERFORM bench.cf_expect(v, 'row 1''s title', r1.title, 'server 1');
    WHEN 'client_wins' THEN
        PERFORM bench.cf_expect(v, 'updated', updated::text, n::text);
        PERFORM bench.cf_expect(v, 'resolutions', res_of::text, format('{"client": %s}', n));
        PERFORM bench.cf_expect(v, 'row 1''s title', r1.title, 'client 1');
    WHEN 'last_write_wins' THEN
        PERFORM bench.cf_expect(v, 'updated', updated::text, (n - n / 10)::text);
        PERFORM bench.cf_expect(v, 'resolutions', res_of::text,
                                format('{"client": %s, "server": %s}', n - n / 10, n / 10));
        PERFORM bench.cf_expect(v, 'row 1''s title (client newer)', r1.title, 'client 1');
        PERFORM bench.cf_expect(v, 'row 10''s title (server newer)', r10.title, 'server 10');
    WHEN 'version_client_wins' THEN
        PERFORM bench.cf_expect(v, 'updated', updated::text, n::text);
        PERFORM bench.cf_expect(v, 'resolutions', res_of::text, format('{"client": %s}', n));
        PERFORM bench.cf_expect(v, 'row 1''s title', r1.title, 'client 1');
    WHEN 'version_manual' THEN
        PERFORM bench.cf_expect(v, 'updated', updated::text, '0');
        PERFORM bench.cf_expect(v, 'resolutions', res_of::text, format('{"manual": %s}', n));
        PERFORM bench.cf_expect(v, 'row 1''s title', r1.title, 'server 1');
    WHEN 'merge' THEN
        PERFORM bench.cf_expect(v, 'updated', updated::text, n::text);
        PERFORM bench.cf_expect(v, 'resolutions', res_of::text, format('{"merged": %s}', n));
        PERFORM bench.cf_expect(v, 'row 1''s title (latest: client)', r1.title, 'client 1');
        PERFORM bench.cf_expect(v, 'row 10''s title (latest: server)', r10.title, 'server 10');
        PERFORM bench.cf_expect(v, 'row 1''s priority (max: server)', r1.priority::text, '2');
        PERFORM bench.cf_expect(v, 'row 2''s priority (max: client)', r2.priority::text, '7');
        PERFORM bench.cf_expect(v, 'row 1''s tags (append_by_id)', r1.tags::text,
                                '[{"v": 1, "id": "a"}, {"v": 1, "id": "s"}, {"v": 1, "id": "c"}]');
    WHEN 'custom_sql', 'custom_plpgsql' THEN
        PERFORM bench.cf_expect(v, 'updated', updated::text, n::text);
        PERFORM bench.cf_expect(v, 'resolutions', res_of::text, format('{"merged": %s}', n));
        PERFORM bench.cf_expect(v, 'row 1''s title', r1.title, 'server 1 + client 1');
    WHEN 'manual' THEN
        PERFORM bench.cf_expect(v, 'updated', updated::text, '0');
        PERFORM bench.cf_expect(v, 'resolutions', res_of::text, format('{"manual": %s}', n));
        PERFORM bench.cf_expect(v, 'row 1''s title', r1.title, 'server 1');
    WHEN 'insert_only' THEN
        PERFORM bench.cf_expect(v, 'updated', updated::text, '0');
        PERFORM bench.cf_expect(v, 'rejected ids', rejected::text, n::text);
        PERFORM bench.cf_expect(v, 'resolutions', res_of::text, format('{"rejected": %s}', n));
        PERFORM bench.cf_expect(v, 'row 1''s title', r1.title, 'server 1');
    END CASE;
END
$$;

-- This backend's time on a CPU and waiting for one, in ns (Linux
-- /proc/self/schedstat): the CPU time of a call is far less sensitive to
-- other load on the machine than its wall time.
CREATE FUNCTION bench.sched_ns() RETURNS bigint[]
    LANGUAGE sql VOLATILE AS $$
    SELECT string_to_array(split_part(pg_read_file('/proc/self/schedstat'), E'\n', 1), ' ')::bigint[]
$$;

------------------------------------------------------------------------
-- the case: reps repetitions (plus the warm-up, repetition 0, unless
-- warmup is false) of every variant, n records
------------------------------------------------------------------------
CREATE PROCEDURE bench.case_conflicts(case_name text, n int, reps int, warmup boolean DEFAULT true)
    LANGUAGE plpgsql AS $$
DECLARE
    acc      text[] := '{}';
    sched    text[] := '{}';
    variants text[] := (SELECT array_agg(name ORDER BY ord) FROM bench.cf_variant);
    v        text;
    doc      json;
    res      json;
    failed   text;
    tok      bigint;
    t0       timestamptz;
    t1       timestamptz;
    t2       timestamptz;
    s0       bigint[];
    s1       bigint[];
BEGIN
    IF n > (SELECT count(*) FROM bench.cf_base) THEN
        RAISE EXCEPTION 'bench.cf_base has fewer than % rows (raise CF_ROWS)', n;
    END IF;
    FOR r IN CASE WHEN warmup THEN 0 ELSE 1 END..reps LOOP
        FOREACH v IN ARRAY bench.rotate(variants, r) LOOP
            PERFORM bench.cf_reset(v, n, v = 'abort');
            COMMIT;
            tok := sync_checkpoint();
            doc := bench.cf_doc(v, n);
            COMMIT;
            IF v <> 'abort' THEN
                PERFORM bench.cf_server_write(v, n);
                COMMIT;
            END IF;
            res := NULL;
            failed := NULL;
            PERFORM set_config('request.jwt.claims', bench.claims('heavy'), true);
            IF v = 'abort_detect' THEN
                -- the push fails: the time until its error, then a ROLLBACK
                BEGIN
                    s0 := bench.sched_ns();
                    t0 := clock_timestamp();
                    res := sync_push(doc, tok);
                    t1 := clock_timestamp();
                EXCEPTION WHEN SQLSTATE 'SY001' THEN
                    t1 := clock_timestamp();
                    failed := SQLSTATE;
                END;
                s1 := bench.sched_ns();
                ROLLBACK;
                t2 := clock_timestamp();
            ELSE
                s0 := bench.sched_ns();
                t0 := clock_timestamp();
                res := sync_push(doc, tok);
                t1 := clock_timestamp();
                s1 := bench.sched_ns();
                COMMIT;
                t2 := clock_timestamp();
            END IF;
            PERFORM bench.cf_verify(v, n, res, failed);
            COMMIT;
            acc := acc || bench.rec(v, r, t0, t1, t2, octet_length(doc::text));
            sched := sched || ARRAY[concat_ws('|', v, r, (s1[1] - s0[1]) / 1e6, (s1[2] - s0[2]) / 1e6)];
        END LOOP;
    END LOOP;
    PERFORM bench.store(case_name, acc);
    -- the call's CPU time and run-queue wait, per repetition
    INSERT INTO bench.metric (case_name, impl, key, value, note)
    SELECT case_name, split_part(a, '|', 1), k.key, split_part(a, '|', k.f)::float8, split_part(a, '|', 2)
      FROM unnest(sched) AS a, (VALUES ('cpu_ms', 3), ('wait_ms', 4)) AS k(key, f);
END
$$;
