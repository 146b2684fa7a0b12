\set SHOW_CONTEXT never
-- The C functions run their internal SQL as the extension owner (a
-- superuser). Nothing the caller defines may be resolved by that SQL: an
-- unprivileged role puts a schema of hostile operators, functions, aggregates
-- and types first in its search_path (and a type in pg_temp, which is searched
-- first for types whatever the search_path says), then calls every entry
-- point. Each hostile object logs who ran it (in a table, and in a counter
-- that the rollback of a failing call does not undo) and, run by a superuser,
-- makes its author one. The log must stay empty and the role unprivileged.
CREATE ROLE regress_mallory NOLOGIN;
CREATE SCHEMA regress_evil AUTHORIZATION regress_mallory;
CREATE TABLE oc_notes (id text PRIMARY KEY, owner_id text NOT NULL, body text,
                       n integer, done boolean, tags text[], meta jsonb);
CREATE TABLE oc_news (id integer PRIMARY KEY, body text);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON oc_notes TO regress_mallory;
GRANT SELECT ON oc_news TO regress_mallory;
GRANT EXECUTE ON FUNCTION sync_checkpoint() TO regress_mallory;
SELECT sync_register_table('oc_notes', owner_column => 'owner_id');
SELECT sync_register_table('oc_news');
INSERT INTO oc_notes VALUES
    ('m1', 'regress_mallory_user', 'mallory one', 1, false, '{a,b}', '{"k": 1}'),
    ('m2', 'regress_mallory_user', 'mallory two', 2, true, '{}', NULL),
    ('o1', 'regress_other_user', 'not mallory''s', 3, false, NULL, NULL);
INSERT INTO oc_news VALUES (1, 'welcome'), (2, 'rules');

-- the results of mallory's pulls, read back as the superuser (tokens are
-- random per database: they go to psql variables, never to the output)
CREATE TABLE oc_res (step text PRIMARY KEY, r json NOT NULL);
GRANT INSERT ON oc_res TO regress_mallory;
-- a pull result's changes, every list sorted
CREATE FUNCTION oc_changes(s text) RETURNS TABLE (tbl text, updated jsonb, deleted jsonb)
LANGUAGE sql AS $$
    SELECT k,
           (SELECT coalesce(jsonb_agg(e ORDER BY e->>'id'), '[]') FROM jsonb_array_elements(v->'updated') e),
           (SELECT coalesce(jsonb_agg(e ORDER BY e #>> '{}'), '[]') FROM jsonb_array_elements(v->'deleted') e)
      FROM oc_res, jsonb_each(r::jsonb->'changes') AS x(k, v)
     WHERE step = s ORDER BY k
$$;
-- err() of 00_setup, with nothing in it that the caller's search_path could
-- resolve (the statement it runs is parsed under that search_path)
CREATE FUNCTION oc_err(q pg_catalog.text) RETURNS pg_catalog.text
LANGUAGE plpgsql AS $$
DECLARE
    st pg_catalog.text;
    msg pg_catalog.text;
    det pg_catalog.text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN pg_catalog.concat(st, ': ', pg_catalog.regexp_replace(msg, '\d{9,}', '<n>', 'g'),
                             CASE WHEN det IS NULL OR det OPERATOR(pg_catalog.=) '' THEN ''
                                  ELSE pg_catalog.concat(' (', det, ')') END);
END
$$;

-- mallory's hostile objects, created with a safe search_path
SET ROLE regress_mallory;
SET search_path = pg_catalog;
CREATE TABLE regress_evil.log (
    grp  text DEFAULT current_setting('regress_oc.grp', true),
    who  name NOT NULL,
    what text NOT NULL
);
GRANT INSERT ON regress_evil.log TO PUBLIC;
-- every hostile object calls this: log the call (in the log table, and in a
-- counter per object that the rollback of a failing call does not undo), and
-- as a superuser escalate
CREATE FUNCTION regress_evil.hook(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM nextval(format('regress_evil.%I', what)::regclass);
    INSERT INTO regress_evil.log (who, what) VALUES (current_user, what);
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        BEGIN
            ALTER ROLE regress_mallory SUPERUSER;
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END IF;
    RETURN true;
END
$$;
-- binary operators shadowing the built-in ones, returning the same results
DO $do$
DECLARE
    o record;
    fn text;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        ('=', 'text', 'text', 'boolean', NULL), ('<>', 'text', 'text', 'boolean', NULL),
        ('<', 'text', 'text', 'boolean', NULL), ('<=', 'text', 'text', 'boolean', NULL),
        ('>', 'text', 'text', 'boolean', NULL), ('>=', 'text', 'text', 'boolean', NULL),
        ('||', 'text', 'text', 'text', NULL),
        ('=', 'name', 'name', 'boolean', NULL), ('<>', 'name', 'name', 'boolean', NULL),
        ('=', 'name', 'text', 'boolean', NULL),
        ('=', 'integer', 'integer', 'boolean', NULL), ('<>', 'integer', 'integer', 'boolean', NULL),
        ('<', 'integer', 'integer', 'boolean', NULL), ('<=', 'integer', 'integer', 'boolean', NULL),
        ('>', 'integer', 'integer', 'boolean', NULL), ('>=', 'integer', 'integer', 'boolean', NULL),
        ('=', 'bigint', 'bigint', 'boolean', NULL), ('<>', 'bigint', 'bigint', 'boolean', NULL),
        ('<', 'bigint', 'bigint', 'boolean', NULL), ('<=', 'bigint', 'bigint', 'boolean', NULL),
        ('>', 'bigint', 'bigint', 'boolean', NULL), ('>=', 'bigint', 'bigint', 'boolean', NULL),
        ('=', 'xid8', 'xid8', 'boolean', NULL), ('<>', 'xid8', 'xid8', 'boolean', NULL),
        ('<', 'xid8', 'xid8', 'boolean', NULL), ('<=', 'xid8', 'xid8', 'boolean', NULL),
        ('>', 'xid8', 'xid8', 'boolean', NULL), ('>=', 'xid8', 'xid8', 'boolean', NULL),
        ('=', 'oid', 'oid', 'boolean', NULL), ('<>', 'oid', 'oid', 'boolean', NULL),
        ('=', 'regclass', 'oid', 'boolean', NULL), ('=', 'regclass', 'regclass', 'boolean', NULL),
        ('=', 'boolean', 'boolean', 'boolean', NULL), ('<>', 'boolean', 'boolean', 'boolean', NULL),
        ('=', 'pg_snapshot', 'pg_snapshot', 'boolean', 'a::text = b::text'),
        ('=', 'jsonb', 'jsonb', 'boolean', NULL), ('->', 'jsonb', 'text', 'jsonb', NULL),
        ('->>', 'jsonb', 'text', 'text', NULL), ('->', 'jsonb', 'integer', 'jsonb', NULL),
        ('->>', 'jsonb', 'integer', 'text', NULL), ('?', 'jsonb', 'text', 'boolean', NULL),
        ('||', 'jsonb', 'jsonb', 'jsonb', NULL),
        ('->', 'json', 'text', 'json', NULL), ('->>', 'json', 'text', 'text', NULL),
        ('=', 'text[]', 'text[]', 'boolean', NULL), ('||', 'text[]', 'text', 'text[]', NULL),
        ('||', 'text[]', 'text[]', 'text[]', NULL),
        ('-', 'timestamptz', 'timestamptz', 'interval', NULL),
        ('<', 'timestamptz', 'timestamptz', 'boolean', NULL),
        ('<', 'interval', 'interval', 'boolean', NULL), ('>', 'interval', 'interval', 'boolean', NULL),
        ('*', 'integer', 'interval', 'interval', NULL), ('*', 'interval', 'integer', 'interval', NULL)
    ) AS v(op, l, r, res, body) LOOP
        fn := format('op_%s_%s_%s', md5(o.op), regexp_replace(o.l, '\W', '_', 'g'),
                     regexp_replace(o.r, '\W', '_', 'g'));
        EXECUTE format($f$
            CREATE FUNCTION regress_evil.%I(a %s, b %s) RETURNS %s
            LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $b$
            BEGIN
                PERFORM regress_evil.hook(%L);
                RETURN %s;
            END
            $b$ $f$, fn, o.l, o.r, o.res, format('%s %s %s', o.l, o.op, o.r),
            coalesce(o.body, format('a OPERATOR(pg_catalog.%s) b', o.op)));
        EXECUTE format('CREATE OPERATOR regress_evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = regress_evil.%I)',
                       o.op, o.l, o.r, fn);
    END LOOP;
END
$do$;
-- functions shadowing built-in ones (same argument types: found first)
DO $do$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('pg_snapshot_xmin', 's pg_snapshot', 'xid8', 'pg_catalog.pg_snapshot_xmin(s)'),
        ('pg_snapshot_xmax', 's pg_snapshot', 'xid8', 'pg_catalog.pg_snapshot_xmax(s)'),
        ('pg_visible_in_snapshot', 'x xid8, s pg_snapshot', 'boolean', 'pg_catalog.pg_visible_in_snapshot(x, s)'),
        ('pg_current_snapshot', '', 'pg_snapshot', 'pg_catalog.pg_current_snapshot()'),
        ('pg_current_xact_id', '', 'xid8', 'pg_catalog.pg_current_xact_id()'),
        ('jsonb_build_object', 'k text, v text', 'jsonb', 'pg_catalog.jsonb_build_object(k, v)'),
        ('jsonb_build_object', 'k text, v jsonb', 'jsonb', 'pg_catalog.jsonb_build_object(k, v)'),
        ('format', 'f text', 'text', 'pg_catalog.format(f)'),
        ('format', 'f text, a text', 'text', 'pg_catalog.format(f, a)'),
        ('now', '', 'timestamptz', 'pg_catalog.now()'),
        ('clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()'),
        ('nextval', 's regclass', 'bigint', 'pg_catalog.nextval(s)'),
        ('quote_ident', 's text', 'text', 'pg_catalog.quote_ident(s)'),
        ('current_setting', 's text, m boolean', 'text', 'pg_catalog.current_setting(s, m)'),
        ('array_append', 'a text[], e text', 'text[]', 'pg_catalog.array_append(a, e)')
    ) AS v(name, args, res, body) LOOP
        EXECUTE format($f$
            CREATE FUNCTION regress_evil.%I(%s) RETURNS %s
            LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $b$
            BEGIN
                PERFORM regress_evil.hook(%L);
                RETURN %s;
            END
            $b$ $f$, f.name, f.args, f.res, format('%s(%s)', f.name, f.args), f.body);
    END LOOP;
END
$do$;
CREATE FUNCTION regress_evil.jsonb_array_elements_text(j jsonb) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM regress_evil.hook('jsonb_array_elements_text(j jsonb)');
    RETURN QUERY SELECT * FROM pg_catalog.jsonb_array_elements_text(j);
END
$$;
CREATE FUNCTION regress_evil.jsonb_array_elements(j jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM regress_evil.hook('jsonb_array_elements(j jsonb)');
    RETURN QUERY SELECT * FROM pg_catalog.jsonb_array_elements(j);
END
$$;
CREATE FUNCTION regress_evil.unnest(a anyarray) RETURNS SETOF anyelement
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM regress_evil.hook('unnest(a anyarray)');
    RETURN QUERY SELECT * FROM pg_catalog.unnest(a);
END
$$;
-- aggregates shadowing min, max and array_agg
CREATE FUNCTION regress_evil.least8(s bigint, v bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM regress_evil.hook('min(bigint)');
    RETURN least(s, v);
END
$$;
CREATE FUNCTION regress_evil.greatest8(s bigint, v bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM regress_evil.hook('max(bigint)');
    RETURN greatest(s, v);
END
$$;
CREATE FUNCTION regress_evil.agg_text(s text[], v text) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM regress_evil.hook('array_agg(text)');
    RETURN array_append(s, v);
END
$$;
CREATE AGGREGATE regress_evil.min(bigint) (SFUNC = regress_evil.least8, STYPE = bigint);
CREATE AGGREGATE regress_evil.max(bigint) (SFUNC = regress_evil.greatest8, STYPE = bigint);
CREATE AGGREGATE regress_evil.array_agg(text) (SFUNC = regress_evil.agg_text, STYPE = text[]);
-- types named like built-in ones: an unqualified cast such as ::text finds
-- these domains first, and their checks call the hook
CREATE DOMAIN regress_evil.text AS pg_catalog.text CHECK (regress_evil.hook('domain regress_evil.text'));
CREATE DOMAIN regress_evil.oid AS pg_catalog.oid CHECK (regress_evil.hook('domain regress_evil.oid'));
CREATE DOMAIN regress_evil.name AS pg_catalog.name CHECK (regress_evil.hook('domain regress_evil.name'));
CREATE DOMAIN regress_evil.regclass AS pg_catalog.regclass CHECK (regress_evil.hook('domain regress_evil.regclass'));
CREATE DOMAIN regress_evil.xid8 AS pg_catalog.xid8 CHECK (regress_evil.hook('domain regress_evil.xid8'));
CREATE DOMAIN regress_evil.pg_snapshot AS pg_catalog.pg_snapshot CHECK (regress_evil.hook('domain regress_evil.pg_snapshot'));
CREATE DOMAIN regress_evil.jsonb AS pg_catalog.jsonb CHECK (regress_evil.hook('domain regress_evil.jsonb'));
CREATE DOMAIN regress_evil.json AS pg_catalog.json CHECK (regress_evil.hook('domain regress_evil.json'));
-- a type of mallory's own that text converts to implicitly, with an operator
CREATE TYPE regress_evil.evil_t AS (v text);
CREATE FUNCTION regress_evil.evil_t(v text) RETURNS regress_evil.evil_t
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM regress_evil.hook('cast text AS evil_t');
    RETURN ROW(v)::regress_evil.evil_t;
END
$$;
CREATE CAST (text AS regress_evil.evil_t) WITH FUNCTION regress_evil.evil_t(text) AS IMPLICIT;
CREATE FUNCTION regress_evil.evil_eq(a regress_evil.evil_t, b regress_evil.evil_t) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM regress_evil.hook('evil_t = evil_t');
    RETURN a.v = b.v;
END
$$;
CREATE OPERATOR regress_evil.= (LEFTARG = regress_evil.evil_t, RIGHTARG = regress_evil.evil_t,
                                FUNCTION = regress_evil.evil_eq);
-- the counters, one per object
DO $do$
DECLARE
    l text;
BEGIN
    FOR l IN SELECT m[1] FROM pg_proc p, regexp_matches(p.prosrc, 'hook\(''([^'']+)''\)', 'g') m
              WHERE p.pronamespace = 'regress_evil'::regnamespace
             UNION
             SELECT m[1] FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), 'hook\(''([^'']+)''', 'g') m
              WHERE c.connamespace = 'regress_evil'::regnamespace LOOP
        EXECUTE format('CREATE SEQUENCE regress_evil.%I', l);
    END LOOP;
END
$do$;
RESET search_path;
RESET ROLE;
-- what the hostile objects logged for a group of calls (committed calls, by
-- whom), all their calls (also those rolled back with a failing call), and
-- whether mallory became a superuser; resets the counters
CREATE FUNCTION oc_check(g text)
    RETURNS TABLE (logged bigint, logged_calls text, all_calls numeric, objects_called text, mallory_is_superuser boolean)
LANGUAGE plpgsql AS $$
DECLARE
    c text;
BEGIN
    SELECT count(*), string_agg(DISTINCT l.who || ': ' || l.what, ', ' ORDER BY l.who || ': ' || l.what)
      INTO logged, logged_calls
      FROM regress_evil.log l WHERE l.grp = g;
    SELECT coalesce(sum(s.last_value), 0), string_agg(s.sequencename, ', ' ORDER BY s.sequencename)
      INTO all_calls, objects_called
      FROM pg_sequences s WHERE s.schemaname = 'regress_evil' AND s.last_value IS NOT NULL;
    FOR c IN SELECT s.sequencename FROM pg_sequences s
              WHERE s.schemaname = 'regress_evil' AND s.last_value IS NOT NULL LOOP
        EXECUTE format('ALTER SEQUENCE regress_evil.%I RESTART', c);
    END LOOP;
    mallory_is_superuser := (SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_mallory');
    RETURN NEXT;
END
$$;
SELECT (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'regress_evil'::regnamespace) AS operators,
       (SELECT count(*) FROM pg_proc WHERE pronamespace = 'regress_evil'::regnamespace) AS functions,
       (SELECT count(*) FROM pg_type WHERE typnamespace = 'regress_evil'::regnamespace AND typtype = 'd') AS domains,
       (SELECT count(*) FROM pg_sequences WHERE schemaname = 'regress_evil') AS counters;

-- the hostile objects work: mallory's own unqualified expressions reach them
SET ROLE regress_mallory;
SET search_path = regress_evil, pg_catalog, public;
SET regress_oc.grp = 'self-check';
SELECT 'a'::text, 'a'::pg_catalog.text = 'a', 1::bigint < 2::bigint, 'oc_notes'::regclass = 0::pg_catalog.oid,
       '{"a": 1}'::pg_catalog.jsonb ->> 'a', pg_current_xact_id() >= pg_current_xact_id(),
       now() - clock_timestamp() < 3 * interval '1 s',
       max(id) FROM (VALUES (1::bigint)) v(id);
RESET ROLE;
RESET search_path;
SELECT who, what FROM regress_evil.log ORDER BY what;
SELECT all_calls, mallory_is_superuser FROM oc_check('self-check');
TRUNCATE regress_evil.log;
ALTER ROLE regress_mallory NOSUPERUSER;

-- first pull, as mallory with the hostile schema first in search_path
SET regress_oc.grp = 'first pull';
SET ROLE regress_mallory;
SET search_path = regress_evil, pg_catalog, public;
SET request.jwt.claims = '{"sub": "regress_mallory_user"}';
INSERT INTO public.oc_res VALUES ('first pull', sync_pull());
RESET ROLE;
RESET search_path;
RESET request.jwt.claims;
SELECT * FROM oc_check('first pull');
ALTER ROLE regress_mallory NOSUPERUSER;
SELECT * FROM oc_changes('first pull');
SELECT (r->>'timestamp')::bigint AS tok1 FROM oc_res WHERE step = 'first pull' \gset

-- incremental pulls: with a token, with a schema migration, with an unknown token
UPDATE oc_notes SET body = 'mallory one, edited' WHERE id = 'm1';
DELETE FROM oc_notes WHERE id = 'm2';
INSERT INTO oc_notes VALUES ('m3', 'regress_mallory_user', 'mallory three', 3, NULL, '{c}', '[1, 2]');
UPDATE oc_notes SET body = 'still not mallory''s' WHERE id = 'o1';
INSERT INTO oc_news VALUES (3, 'news');
SET regress_oc.grp = 'incremental pull';
SET ROLE regress_mallory;
SET search_path = regress_evil, pg_catalog, public;
SET request.jwt.claims = '{"sub": "regress_mallory_user"}';
INSERT INTO public.oc_res VALUES ('incremental pull', sync_pull(:tok1));
INSERT INTO public.oc_res VALUES ('migration pull',
    sync_pull(:tok1, 2, '{"tables": ["oc_news"], "columns": [{"table": "oc_notes", "columns": ["n"]}]}'));
SELECT public.oc_err($q$ SELECT sync_pull(1) $q$);
RESET ROLE;
RESET search_path;
RESET request.jwt.claims;
SELECT * FROM oc_check('incremental pull');
ALTER ROLE regress_mallory NOSUPERUSER;
SELECT * FROM oc_changes('incremental pull');
SELECT * FROM oc_changes('migration pull');
SELECT (r->>'timestamp')::bigint AS tok2 FROM oc_res WHERE step = 'incremental pull' \gset
SELECT :tok2 > :tok1 AS newer_token;

-- pushes: create, update, delete with a token; without a token; a conflict;
-- another user's record; a table mallory may only read
SET regress_oc.grp = 'push';
SET ROLE regress_mallory;
SET search_path = regress_evil, pg_catalog, public;
SET request.jwt.claims = '{"sub": "regress_mallory_user"}';
SELECT sync_push('{"oc_notes": {"created": [{"id": "m4", "body": "pushed", "n": 4, "done": true, "tags": "{x,y}", "meta": "{\"p\": 2}"}],
                                "updated": [{"id": "m3", "body": "mallory three, pushed", "owner_id": "regress_other_user"}],
                                "deleted": ["m1"]}}', :tok2);
SELECT sync_push('{"oc_notes": {"created": [{"id": "m5", "body": "pushed without a token"}]}}', NULL);
SELECT public.oc_err($q$ SELECT sync_push('{"oc_notes": {"updated": [{"id": "m4", "body": "stale"}]}}', NULL) $q$);
SELECT sync_push('{"oc_notes": {"updated": [{"id": "o1", "body": "taken over?"}]}}', :tok2);
SELECT sync_push('{"oc_notes": {"deleted": ["o1"]}}', :tok2);
SELECT public.oc_err($q$ SELECT sync_push('{"oc_news": {"updated": [{"id": "1", "body": "defaced"}]}}', NULL) $q$);
RESET ROLE;
RESET search_path;
RESET request.jwt.claims;
SELECT * FROM oc_check('push');
ALTER ROLE regress_mallory NOSUPERUSER;
SELECT * FROM oc_notes ORDER BY id;

-- the capture triggers, fired by mallory's own writes (with the table's
-- descriptor dropped first, so that the triggers read the registration)
SELECT _pg_sync.invalidate('oc_notes');
SET regress_oc.grp = 'capture';
SET ROLE regress_mallory;
SET search_path = regress_evil, pg_catalog, public;
INSERT INTO public.oc_notes (id, owner_id, body) VALUES ('m6', 'regress_mallory_user', 'typed by mallory');
UPDATE public.oc_notes SET body = 'edited by mallory' WHERE id OPERATOR(pg_catalog.=) 'm6';
UPDATE public.oc_notes SET owner_id = 'regress_mallory_user2' WHERE id OPERATOR(pg_catalog.=) 'm5';
DELETE FROM public.oc_notes WHERE id OPERATOR(pg_catalog.=) 'm4';
RESET ROLE;
RESET search_path;
SELECT * FROM oc_check('capture');
ALTER ROLE regress_mallory NOSUPERUSER;
SELECT m.id, m.owner, m.deleted FROM _pg_sync.row_meta m JOIN _pg_sync.tables t USING (table_id)
 WHERE t.relid = 'oc_notes'::regclass ORDER BY m.id, m.owner;
SELECT _pg_sync.invalidate('oc_notes');
SET regress_oc.grp = 'truncate';
SET ROLE regress_mallory;
SET search_path = regress_evil, pg_catalog, public;
TRUNCATE public.oc_notes;
RESET ROLE;
RESET search_path;
SELECT * FROM oc_check('truncate');
ALTER ROLE regress_mallory NOSUPERUSER;
SELECT m.id, m.owner, m.deleted FROM _pg_sync.row_meta m JOIN _pg_sync.tables t USING (table_id)
 WHERE t.relid = 'oc_notes'::regclass ORDER BY m.id, m.owner;

-- sync_checkpoint, and a last pull that sees all of the above
INSERT INTO oc_notes VALUES ('m7', 'regress_mallory_user', 'after the truncate');
SET regress_oc.grp = 'checkpoint';
SET ROLE regress_mallory;
SET search_path = regress_evil, pg_catalog, public;
SET request.jwt.claims = '{"sub": "regress_mallory_user"}';
SELECT sync_checkpoint() AS cp \gset
INSERT INTO public.oc_res VALUES ('last pull', sync_pull(:tok2));
RESET ROLE;
RESET search_path;
RESET request.jwt.claims;
SELECT * FROM oc_check('checkpoint');
ALTER ROLE regress_mallory NOSUPERUSER;
SELECT :cp > :tok2 AND EXISTS (SELECT FROM _pg_sync.checkpoints WHERE id = :cp) AS checkpoint_recorded;
SELECT * FROM oc_changes('last pull');
SELECT (r->>'timestamp')::bigint AS tok3 FROM oc_res WHERE step = 'last pull' \gset

-- pg_temp is searched first for types unless the search_path names it: a
-- temporary type named text shadows pg_catalog.text for every unqualified
-- cast, even with the default search_path, used here
SET regress_oc.grp = 'pg_temp';
INSERT INTO oc_notes VALUES ('m8', 'regress_mallory_user', 'before the temp type');
SET ROLE regress_mallory;
CREATE SEQUENCE regress_evil."domain pg_temp.text";
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (regress_evil.hook('domain pg_temp.text'));
SET request.jwt.claims = '{"sub": "regress_mallory_user"}';
INSERT INTO public.oc_res VALUES ('pg_temp pull', sync_pull(:tok3));
SELECT sync_push('{"oc_notes": {"created": [{"id": "m9", "body": "pushed with a temp type"}], "updated": [{"id": "m7", "body": "m7, pushed"}]}}', :tok3);
INSERT INTO public.oc_notes (id, owner_id, body) VALUES ('m10', 'regress_mallory_user', 'typed with a temp type');
UPDATE public.oc_notes SET body = 'typed with a temp type, edited' WHERE id OPERATOR(pg_catalog.=) 'm10';
DELETE FROM public.oc_notes WHERE id OPERATOR(pg_catalog.=) 'm9';
DROP DOMAIN pg_temp.text;
RESET ROLE;
RESET request.jwt.claims;
SELECT * FROM oc_check('pg_temp');
ALTER ROLE regress_mallory NOSUPERUSER;
SELECT * FROM oc_changes('pg_temp pull');
SELECT * FROM oc_notes ORDER BY id;

-- a first pull in a transaction that wrote first: its own rows are pending,
-- left for the next pull
SET regress_oc.grp = 'pull after a write';
SET ROLE regress_mallory;
SET search_path = regress_evil, pg_catalog, public;
SET request.jwt.claims = '{"sub": "regress_mallory_user"}';
BEGIN;
INSERT INTO public.oc_notes (id, owner_id, body) VALUES ('m11', 'regress_mallory_user', 'written before the pull');
INSERT INTO public.oc_res VALUES ('pull after a write', sync_pull());
COMMIT;
RESET ROLE;
RESET search_path;
RESET request.jwt.claims;
SELECT * FROM oc_check('pull after a write');
ALTER ROLE regress_mallory NOSUPERUSER;
SELECT * FROM oc_changes('pull after a write');

-- dropping a table of her own fires pg_sync's sql_drop event trigger
SET regress_oc.grp = 'drop';
SET ROLE regress_mallory;
SET search_path = regress_evil, pg_catalog, public;
CREATE TABLE regress_evil.scratch (x pg_catalog.int4);
DROP TABLE regress_evil.scratch;
RESET ROLE;
RESET search_path;
SELECT * FROM oc_check('drop');

-- in all: nothing of mallory's ran, and she is no superuser
SELECT count(*) AS hostile_calls FROM regress_evil.log;
SELECT grp, who, what, count(*) FROM regress_evil.log GROUP BY grp, who, what ORDER BY grp, who, what;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_mallory';

RESET regress_oc.grp;
SELECT sync_unregister_table(t) FROM unnest(ARRAY['oc_notes', 'oc_news']::regclass[]) t;
DROP TABLE oc_notes, oc_news, oc_res;
DROP FUNCTION oc_changes(text), oc_check(text), oc_err(text);
SET client_min_messages = warning;
DROP SCHEMA regress_evil CASCADE;
RESET client_min_messages;
REVOKE EXECUTE ON FUNCTION sync_checkpoint() FROM regress_mallory;
DROP ROLE regress_mallory;
