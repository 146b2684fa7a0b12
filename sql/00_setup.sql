-- Helpers shared by the suite. Tokens are random per database, so tests
-- keep them in a table and print changes, never raw tokens.
DO $$ BEGIN
    EXECUTE format('ALTER DATABASE %I SET pg_sync.checkpoint_interval = 0', current_database());
END $$;

CREATE TABLE tok (client text PRIMARY KEY, t bigint NOT NULL);

-- What WatermelonDB's Turbo Login takes (the first pull's text, parsed
-- natively): per table only created/updated/deleted, deleted empty, ids JSON
-- strings, no id twice, no _status/_changed, values strings, numbers,
-- booleans or null. Raises naming the first rule a first pull breaks.
CREATE FUNCTION turbo_check(r jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    tbl text;
    v jsonb;
    bad text;
BEGIN
    IF jsonb_typeof(r->'changes') <> 'object' OR jsonb_typeof(r->'timestamp') <> 'number' THEN
        RAISE EXCEPTION 'turbo: no changes object or no numeric timestamp';
    END IF;
    FOR tbl, v IN SELECT * FROM jsonb_each(r->'changes') LOOP
        SELECT k INTO bad FROM jsonb_object_keys(v) k WHERE k NOT IN ('created', 'updated', 'deleted');
        IF bad IS NOT NULL THEN RAISE EXCEPTION 'turbo: table % has key %', tbl, bad; END IF;
        IF jsonb_array_length(coalesce(v->'deleted', '[]')) > 0 THEN
            RAISE EXCEPTION 'turbo: table % has deleted ids', tbl;
        END IF;
        SELECT e::text INTO bad
          FROM jsonb_array_elements(coalesce(v->'created', '[]') || coalesce(v->'updated', '[]')) e
         WHERE jsonb_typeof(e) <> 'object' OR jsonb_typeof(e->'id') IS DISTINCT FROM 'string'
            OR e ? '_status' OR e ? '_changed'
            OR EXISTS (SELECT FROM jsonb_each(e) f WHERE jsonb_typeof(f.value) IN ('object', 'array'))
         LIMIT 1;
        IF bad IS NOT NULL THEN RAISE EXCEPTION 'turbo: table % has record %', tbl, bad; END IF;
        SELECT e->>'id' INTO bad
          FROM jsonb_array_elements(coalesce(v->'created', '[]') || coalesce(v->'updated', '[]')) e
         GROUP BY e->>'id' HAVING count(*) > 1 LIMIT 1;
        IF bad IS NOT NULL THEN RAISE EXCEPTION 'turbo: table % has id % twice', tbl, bad; END IF;
    END LOOP;
END
$$;

-- Pulls as a client: uses and then stores the client's token; returns the
-- changes with every list sorted by id. Every first pull is checked to be
-- valid for Turbo Login.
CREATE FUNCTION pull(who text DEFAULT 'c') RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    r := sync_pull((SELECT t FROM tok WHERE client = who))::jsonb;
    IF NOT EXISTS (SELECT FROM tok WHERE client = who) THEN
        PERFORM turbo_check(r);
    END IF;
    IF NOT (r->>'timestamp')::numeric BETWEEN 1 AND 9007199254740991 THEN
        RAISE EXCEPTION 'bad timestamp %', r->'timestamp';
    END IF;
    INSERT INTO tok VALUES (who, (r->>'timestamp')::bigint)
        ON CONFLICT (client) DO UPDATE SET t = excluded.t;
    RETURN (SELECT jsonb_object_agg(k, jsonb_build_object(
                'created', v->'created',
                'updated', (SELECT coalesce(jsonb_agg(e ORDER BY e->>'id'), '[]')
                              FROM jsonb_array_elements(v->'updated') e),
                'deleted', (SELECT coalesce(jsonb_agg(e ORDER BY e #>> '{}'), '[]')
                              FROM jsonb_array_elements(v->'deleted') e)))
              FROM jsonb_each(r->'changes') AS x(k, v));
END
$$;

-- Pushes as a client with its stored token.
CREATE FUNCTION push(changes text, who text DEFAULT 'c') RETURNS json
LANGUAGE sql AS $$
    SELECT sync_push(changes::json, (SELECT t FROM tok WHERE client = who))
$$;

-- The token a client holds.
CREATE FUNCTION token(who text DEFAULT 'c') RETURNS bigint
LANGUAGE sql AS $$ SELECT t FROM tok WHERE client = who $$;

-- Runs a statement and reports its error as "SQLSTATE: message (detail)
-- [the record it names]", with long numbers (tokens) masked.
CREATE FUNCTION err(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
    det text;
    ctx text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            ctx = PG_EXCEPTION_CONTEXT;
    RETURN st || ': ' || regexp_replace(msg, '\d{9,}', '<n>', 'g')
              || coalesce(' (' || nullif(det, '') || ')', '')
              || coalesce(' [' || substring(ctx FROM '(?n)^record .*$') || ']', '');
END
$$;
