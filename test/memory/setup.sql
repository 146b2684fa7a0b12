-- Schema, data and procedures of the backend-memory test (test/memory/run.sh).
-- Uses only sync_register_table, sync_pull and sync_push, so that it also runs
-- against pg_sync 0.1.
CREATE EXTENSION pg_sync;

-- A per-user table of 16 columns: the key, the owner and 14 data columns of
-- the types of README's value mapping. 2^14 subsets of the data columns give
-- up to 16383 distinct non-empty column sets.
CREATE TABLE items (
    id       text PRIMARY KEY,
    owner_id text,
    title    text,
    body     varchar(200),
    n_int    integer,
    n_small  smallint,
    n_big    bigint,
    n_num    numeric(12,2),
    n_real   real,
    n_dbl    double precision,
    done     boolean,
    due      date,
    at       timestamptz,
    meta     jsonb,
    ref      uuid,
    labels   text[]
);
SELECT sync_register_table('items', owner_column => 'owner_id');

-- A shared table with a CHECK and a UNIQUE constraint.
CREATE TABLE notes (
    id   text PRIMARY KEY,
    body text,
    n    integer CHECK (n >= 0),
    slug text UNIQUE
);
SELECT sync_register_table('notes');

-- A shared pull-only table.
CREATE TABLE tags (id text PRIMARY KEY, name text);
SELECT sync_register_table('tags', options => '{"pull_only": true}');

INSERT INTO tags SELECT 'tag-' || g, 'tag ' || g FROM generate_series(1, 20) g;
INSERT INTO notes VALUES ('taken', 'the slug other pushes collide with', 1, 'taken');
INSERT INTO items (id, owner_id, title)
    SELECT 'it-' || g, 'u1', 'item ' || g FROM generate_series(0, 99) g;

-- What the test records: one row per measurement, and what each failing
-- push failed with.
CREATE TABLE mem_log (
    seq        serial PRIMARY KEY,
    label      text NOT NULL,
    pid        integer NOT NULL,
    at         timestamptz NOT NULL,
    vmrss_kb   bigint NOT NULL,
    rssanon_kb bigint NOT NULL,
    rssshmem_kb bigint NOT NULL,
    ctx_bytes  bigint NOT NULL,
    ctx_count  bigint NOT NULL,
    top_contexts text NOT NULL,
    ctx_by_name jsonb NOT NULL   -- name -> total bytes of the contexts of that name
);
CREATE TABLE mem_failures (
    phase text, kind text, expected text, sqlstate text, n bigint
);
CREATE TABLE mem_state (name text PRIMARY KEY, value bigint);

-- Measures the calling backend: RSS from /proc/self/status (the backend opens
-- it, so "self" is the backend) and its memory contexts.
CREATE FUNCTION mem_sample(label text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text := pg_read_file('/proc/self/status');
    r mem_log;
BEGIN
    r.label := label;
    r.pid := pg_backend_pid();
    r.at := clock_timestamp();
    r.vmrss_kb := (regexp_match(st, 'VmRSS:\s+(\d+) kB'))[1]::bigint;
    r.rssanon_kb := (regexp_match(st, 'RssAnon:\s+(\d+) kB'))[1]::bigint;
    r.rssshmem_kb := (regexp_match(st, 'RssShmem:\s+(\d+) kB'))[1]::bigint;
    SELECT sum(total_bytes), count(*) INTO r.ctx_bytes, r.ctx_count
      FROM pg_backend_memory_contexts;
    -- the largest kinds of context: name, how many, kB
    SELECT string_agg(format('%s x%s %s kB', name, n, kb), ', ' ORDER BY kb DESC)
      INTO r.top_contexts
      FROM (SELECT name, count(*) AS n, (sum(total_bytes) / 1024)::bigint AS kb
              FROM pg_backend_memory_contexts
             GROUP BY name ORDER BY kb DESC LIMIT 6) t;
    SELECT jsonb_object_agg(name, bytes) INTO r.ctx_by_name
      FROM (SELECT name, sum(total_bytes) AS bytes FROM pg_backend_memory_contexts GROUP BY name) t;
    INSERT INTO mem_log (label, pid, at, vmrss_kb, rssanon_kb, rssshmem_kb, ctx_bytes, ctx_count, top_contexts, ctx_by_name)
    VALUES (r.label, r.pid, r.at, r.vmrss_kb, r.rssanon_kb, r.rssshmem_kb, r.ctx_bytes, r.ctx_count, r.top_contexts, r.ctx_by_name);
    RETURN format('%-8s pid %s  RssAnon %s kB  VmRSS %s kB  contexts %s kB in %s',
                  label, r.pid, r.rssanon_kb, r.vmrss_kb, r.ctx_bytes / 1024, r.ctx_count);
END $$;

-- A fresh token for user u1 (an incremental pull from the last one, or a
-- first pull).
CREATE FUNCTION mem_token() RETURNS bigint LANGUAGE sql AS $$
    SELECT (sync_pull((SELECT value FROM mem_state WHERE name = 'token'), user_id => 'u1')->>'timestamp')::bigint
$$;

-- Phase 1: n failing pushes of each kind, each in its own subtransaction
-- (a plpgsql EXCEPTION block), committing every `batch` iterations. Counts
-- the outcome per kind into mem_failures: the SQLSTATE, 'none' for a push
-- that succeeded, 'rejected' for one that succeeded with
-- experimentalRejectedIds. A push to a pull-only table failed with 42501
-- up to pg_sync 0.2's commit 0921b80; since then its records are rejected.
CREATE PROCEDURE mem_failing_pushes(phase text, n integer, batch integer) LANGUAGE plpgsql AS $$
DECLARE
    kinds text[] := ARRAY['malformed_json', 'wrong_shape', 'bad_value', 'constraint',
                          'conflict', 'unknown_token', 'not_allowed', 'pull_only'];
    expected text[] := ARRAY['22P02', '22023', '22P02|22003', '23505|23514',
                             'SY001', 'SY003', '42501', '42501|rejected'];
    tally jsonb := '{}';
    k integer;
    i integer;
    doc text;
    res json;
    tok bigint;
    old_tok bigint;
    code text;
    key text;
BEGIN
    tok := mem_token();
    UPDATE mem_state SET value = tok WHERE name = 'token';
    -- a token older than the last write of the conflict rows
    old_tok := (SELECT value FROM mem_state WHERE name = 'conflict_token');
    COMMIT;
    FOR i IN 1..n LOOP
        FOR k IN 1..array_length(kinds, 1) LOOP
            BEGIN
                res := NULL;
                CASE kinds[k]
                WHEN 'malformed_json' THEN
                    -- fails in the json type's input, as a document from an
                    -- HTTP layer does
                    doc := format('{"items": {"created": [{"id": "f-%s", "title": "x"', i);
                    res := sync_push(doc::json, tok, 'u1');
                WHEN 'wrong_shape' THEN
                    doc := CASE i % 3
                           WHEN 0 THEN format('{"items": {"created": {"id": "f-%s"}}}', i)
                           WHEN 1 THEN format('{"items": {"created": [{"title": "no id %s"}]}}', i)
                           ELSE format('{"items": {"created": [], "upserted": [{"id": "f-%s"}]}}', i) END;
                    res := sync_push(doc::json, tok, 'u1');
                WHEN 'bad_value' THEN
                    doc := CASE i % 2
                           WHEN 0 THEN format('{"items": {"created": [{"id": "f-%s", "title": "t", "ref": "not-a-uuid-%s"}]}}', i, i)
                           ELSE format('{"items": {"created": [{"id": "f-%s", "title": "t", "n_small": %s}]}}', i, 40000 + i) END;
                    res := sync_push(doc::json, tok, 'u1');
                WHEN 'constraint' THEN
                    doc := CASE i % 2
                           WHEN 0 THEN format('{"notes": {"created": [{"id": "f-%s", "n": 1, "slug": "taken"}]}}', i)
                           ELSE format('{"notes": {"created": [{"id": "f-%s", "n": -%s, "slug": "s-f-%s"}]}}', i, i, i) END;
                    res := sync_push(doc::json, tok, 'u1');
                WHEN 'conflict' THEN
                    doc := format('{"items": {"updated": [{"id": "conf-%s", "title": "mine %s"}]}}', i % 100, i);
                    res := sync_push(doc::json, old_tok, 'u1');
                WHEN 'unknown_token' THEN
                    doc := format('{"items": {"created": [{"id": "f-%s", "title": "t"}]}}', i);
                    res := sync_push(doc::json, CASE WHEN i % 2 = 0 THEN tok + 10000000 + i ELSE -i END, 'u1');
                WHEN 'not_allowed' THEN
                    -- a role with SELECT only: a missing GRANT, or a user_id
                    -- passed by a role that is not trusted (the role is reset
                    -- by the subtransaction's abort)
                    SET LOCAL ROLE mem_client;
                    IF i % 2 = 0 THEN
                        doc := format('{"notes": {"created": [{"id": "f-%s", "n": 1, "slug": "s-f-%s"}]}}', i, i);
                        res := sync_push(doc::json, tok);
                    ELSE
                        doc := format('{"items": {"created": [{"id": "f-%s", "title": "t"}]}}', i);
                        res := sync_push(doc::json, tok, 'u1');
                    END IF;
                    RESET ROLE;
                WHEN 'pull_only' THEN
                    doc := format('{"tags": {"created": [{"id": "f-%s", "name": "t"}]}}', i);
                    res := sync_push(doc::json, tok, 'u1');
                END CASE;
                code := CASE WHEN res::jsonb ? 'experimentalRejectedIds' THEN 'rejected' ELSE 'none' END;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE;
            END;
            key := kinds[k] || ' ' || expected[k] || ' ' || code;
            tally := jsonb_set(tally, ARRAY[key], to_jsonb(coalesce((tally->>key)::integer, 0) + 1));
        END LOOP;
        IF i % batch = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
    INSERT INTO mem_failures
        SELECT phase, split_part(t.key, ' ', 1), split_part(t.key, ' ', 2), split_part(t.key, ' ', 3), t.value::bigint
          FROM jsonb_each_text(tally) t;
    COMMIT;
END $$;

-- Phase 2: n successful pushes (one new item, one update, a new note, every
-- 10th push a delete), each followed by an incremental pull with the token of
-- the one before, each in a transaction of its own (as HTTP requests are; a
-- pull leaves its own transaction's writes for a later pull). Every push
-- keeps to the same column sets.
CREATE PROCEDURE mem_sync_rounds(prefix text, n integer) LANGUAGE plpgsql AS $$
DECLARE
    tok bigint;
    res json;
    pulled json;
    doc json;
    deletes integer;
    i integer;
BEGIN
    tok := (SELECT value FROM mem_state WHERE name = 'token');
    FOR i IN 1..n LOOP
        deletes := (i % 10 = 0 AND i > 5)::integer;
        doc := json_build_object(
            'items', json_build_object(
                'created', json_build_array(json_build_object('id', prefix || i, 'title', 'new ' || i, 'n_int', i)),
                'updated', json_build_array(json_build_object('id', 'it-' || (i % 100), 'title', 'upd ' || i, 'n_int', i)),
                'deleted', CASE WHEN deletes = 1 THEN json_build_array(prefix || (i - 5)) ELSE '[]'::json END),
            'notes', json_build_object(
                'created', json_build_array(json_build_object('id', prefix || i, 'body', 'b', 'n', i, 'slug', prefix || i))));
        res := sync_push(doc, tok, 'u1');
        IF (res->>'created')::integer <> 2 OR (res->>'updated')::integer <> 1
           OR (res->>'deleted')::integer <> deletes THEN
            RAISE EXCEPTION 'push % of round % returned %', doc, i, res;
        END IF;
        COMMIT;
        pulled := sync_pull(tok, user_id => 'u1');
        IF (pulled->>'timestamp')::bigint IS NULL
           OR position(format('"%s"', prefix || i) IN (pulled->'changes'->'items')::text) = 0 THEN
            RAISE EXCEPTION 'pull % did not deliver %: %', i, prefix || i, pulled;
        END IF;
        tok := (pulled->>'timestamp')::bigint;
        UPDATE mem_state SET value = tok WHERE name = 'token';
        COMMIT;
    END LOOP;
END $$;

-- Phase 3: n pushes of one record each, every one with a different set of
-- columns: the bits of pattern first..first+n-1 over the 14 data columns.
-- Odd pushes create a record, even ones update the record created just
-- before; a pull after each keeps the token fresh.
CREATE PROCEDURE mem_column_sets(prefix text, first integer, n integer) LANGUAGE plpgsql AS $$
DECLARE
    cols text[] := ARRAY['title', 'body', 'n_int', 'n_small', 'n_big', 'n_num', 'n_real',
                         'n_dbl', 'done', 'due', 'at', 'meta', 'ref', 'labels'];
    tok bigint;
    rec jsonb;
    res json;
    i integer;
    b integer;
    p integer;
    id text;
    verb text;
    v jsonb;
BEGIN
    tok := (SELECT value FROM mem_state WHERE name = 'token');
    FOR i IN 1..n LOOP
        p := first + i - 1;
        IF p < 1 OR p > 16383 THEN
            RAISE EXCEPTION 'column-set pattern % out of range', p;
        END IF;
        IF i % 2 = 1 THEN
            id := prefix || i;
            verb := 'created';
        ELSE
            id := prefix || (i - 1);
            verb := 'updated';
        END IF;
        rec := jsonb_build_object('id', id);
        FOR b IN 0..13 LOOP
            CONTINUE WHEN (p >> b) & 1 = 0;
            v := CASE cols[b + 1]
                 WHEN 'title' THEN to_jsonb('title ' || p)
                 WHEN 'body' THEN to_jsonb('body of ' || id)
                 WHEN 'n_int' THEN to_jsonb(p)
                 WHEN 'n_small' THEN to_jsonb(p % 30000)
                 WHEN 'n_big' THEN to_jsonb(p::bigint * 1000000007)
                 WHEN 'n_num' THEN to_jsonb(p / 100.0)
                 WHEN 'n_real' THEN to_jsonb(p * 0.5)
                 WHEN 'n_dbl' THEN to_jsonb(p * 0.25)
                 WHEN 'done' THEN to_jsonb(p % 2 = 0)
                 WHEN 'due' THEN to_jsonb('2024-01-01'::date + p % 1000)
                 WHEN 'at' THEN to_jsonb(1700000000000 + p::bigint * 1000)
                 WHEN 'meta' THEN to_jsonb(format('{"p": %s}', p))
                 WHEN 'ref' THEN to_jsonb(md5(p::text)::uuid)
                 WHEN 'labels' THEN to_jsonb(format('{a,b%s}', p))
                 END;
            rec := rec || jsonb_build_object(cols[b + 1], v);
        END LOOP;
        res := sync_push(jsonb_build_object('items', jsonb_build_object(verb, jsonb_build_array(rec)))::json, tok, 'u1');
        IF (res->>verb)::integer <> 1 THEN
            RAISE EXCEPTION 'column-set push % (%) returned %', i, rec, res;
        END IF;
        COMMIT;
        tok := (sync_pull(tok, user_id => 'u1')->>'timestamp')::bigint;
        UPDATE mem_state SET value = tok WHERE name = 'token';
        COMMIT;
    END LOOP;
END $$;

-- A role that may read but not write the synced tables, and is not trusted
-- to pass user_id.
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mem_client') THEN
        CREATE ROLE mem_client NOLOGIN;
    END IF;
END $$;
GRANT SELECT ON items, notes, tags TO mem_client;

-- The conflict rows: written after the token kept in 'conflict_token', and
-- never pulled with it.
INSERT INTO mem_state VALUES ('token', NULL);
INSERT INTO mem_state SELECT 'conflict_token', mem_token();
INSERT INTO items (id, owner_id, title)
    SELECT 'conf-' || g, 'u1', 'server ' || g FROM generate_series(0, 99) g;
