-- Push races: clients pull and push overlapping records of a small id space
-- into two tables, one under "abort" and one under "client_wins", while SQL
-- writers change the same rows and sync_prune runs every 200 ms.
--
-- Clients 5-8 name their device (client_id), as the edge function does: like
-- a WatermelonDB device, each keeps what a push applied as it sent it, and is
-- then not sent those rows back while they are as it pushed them. Values of
-- "cw" are mostly 1 or 2, so that a row is written back to what a device
-- pushed after the device was sent another version, deleted and created
-- again as it was, or written to the value it already has.
--
-- Every write a push makes is checked against what the pushing client had
-- seen (its replica, kept in the same database): under "abort" a push may
-- only change a row in the state the client pulled, so any difference is a
-- lost update, recorded in "overwrites". Under "client_wins" such writes are
-- the policy at work; they are counted, not failures.
CREATE EXTENSION IF NOT EXISTS pg_sync;
DROP TABLE IF EXISTS ab, cw, replica, tok, overwrites, outcomes CASCADE;
DROP SEQUENCE IF EXISTS version_seq;
CREATE SEQUENCE version_seq;
CREATE TABLE ab (id text PRIMARY KEY, v bigint NOT NULL);
CREATE TABLE cw (id text PRIMARY KEY, v bigint NOT NULL);
SELECT sync_register_table('ab');
SELECT sync_register_table('cw', conflict_policy => 'client_wins');
-- r1..r30 race; r31..r300 are only ever deleted, leaving tombstones to prune
INSERT INTO ab SELECT 'r' || g, nextval('version_seq') FROM generate_series(1, 300) g;
INSERT INTO cw SELECT 'r' || g, nextval('version_seq') FROM generate_series(1, 300) g;

CREATE TABLE replica (client int, tbl text, id text, v bigint, PRIMARY KEY (client, tbl, id));
CREATE TABLE tok (client int PRIMARY KEY, t bigint);
CREATE TABLE overwrites (tbl text, id text, client int, op text, server_v bigint, seen_v bigint);
CREATE TABLE outcomes (who text, state text, n bigint NOT NULL DEFAULT 1, PRIMARY KEY (who, state));

-- the device a client names: clients 5-8 (NULL: none)
CREATE FUNCTION race_device(c int) RETURNS text IMMUTABLE LANGUAGE sql AS $$
    SELECT CASE WHEN c > 4 THEN 'device-' || c END
$$;

-- a new value of a row: "cw" often takes one of a few values again
CREATE FUNCTION race_value(t text) RETURNS bigint LANGUAGE sql AS $$
    SELECT CASE WHEN t = 'cw' AND random() < 0.8 THEN 1 + floor(random() * 2)::bigint
                ELSE nextval('version_seq') END
$$;

CREATE FUNCTION count_outcome(who text, state text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO outcomes AS o VALUES (who, state) ON CONFLICT (who, state) DO UPDATE SET n = o.n + 1
$$;

-- a write made by a push: compare with what the pushing client had seen
CREATE FUNCTION check_push_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c int := nullif(current_setting('stress.client', true), '')::int;
    seen bigint;
    had boolean;
BEGIN
    IF c IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT r.v, true INTO seen, had FROM replica r
     WHERE r.client = c AND r.tbl = TG_TABLE_NAME
       AND r.id = CASE WHEN TG_OP = 'INSERT' THEN NEW.id ELSE OLD.id END;
    IF TG_OP = 'INSERT' AND coalesce(had, false) THEN
        -- the client had the row, someone deleted it since: a resurrection
        INSERT INTO overwrites VALUES (TG_TABLE_NAME, NEW.id, c, 'insert over a delete', NULL, seen);
    ELSIF TG_OP <> 'INSERT' AND OLD.v IS DISTINCT FROM seen THEN
        INSERT INTO overwrites VALUES (TG_TABLE_NAME, OLD.id, c, lower(TG_OP), OLD.v, seen);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER check_push AFTER INSERT OR UPDATE OR DELETE ON ab FOR EACH ROW EXECUTE FUNCTION check_push_write();
CREATE TRIGGER check_push AFTER INSERT OR UPDATE OR DELETE ON cw FOR EACH ROW EXECUTE FUNCTION check_push_write();

-- What client c takes of one table's changes (those a pull sent, or those
-- a push of its own applied): the deleted ids go, the created and updated
-- rows are set.
CREATE FUNCTION race_apply(c int, t text, ch jsonb) RETURNS void LANGUAGE sql AS $$
    DELETE FROM replica x
     WHERE x.client = c AND x.tbl = t
       AND x.id IN (SELECT jsonb_array_elements_text(ch -> 'deleted'));
    INSERT INTO replica
    SELECT c, t, e->>'id', (e->>'v')::bigint
      FROM jsonb_array_elements(coalesce(ch -> 'created', '[]') || coalesce(ch -> 'updated', '[]')) e
    ON CONFLICT (client, tbl, id) DO UPDATE SET v = excluded.v;
$$;

-- One pull of a client, applied to its replica. A refused token (expired by
-- sync_prune) resets the client: replica and token start over.
CREATE FUNCTION race_pull(c int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    t text;
BEGIN
    BEGIN
        r := sync_pull((SELECT k.t FROM tok k WHERE k.client = c), client_id => race_device(c))::jsonb;
    EXCEPTION WHEN OTHERS THEN
        PERFORM count_outcome('pull', SQLSTATE);
        IF SQLSTATE NOT IN ('SY002') THEN
            RETURN;
        END IF;
        DELETE FROM replica WHERE client = c;
        r := sync_pull(NULL, client_id => race_device(c))::jsonb;
    END;
    PERFORM count_outcome('pull', 'ok');
    INSERT INTO tok VALUES (c, (r->>'timestamp')::bigint) ON CONFLICT (client) DO UPDATE SET t = excluded.t;
    FOREACH t IN ARRAY ARRAY['ab', 'cw'] LOOP
        PERFORM race_apply(c, t, r -> 'changes' -> t);
    END LOOP;
END
$$;

-- One push of a client: 1-6 random records per table, in random order; each
-- an update (or delete) of a row the client has, or a create. A device keeps
-- what a push that succeeded applied: every record, as it sent it (under
-- "abort" and "client_wins" a push applies all its records or fails).
CREATE FUNCTION race_push(c int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb := '{}';
    t text;
    created jsonb;
    updated jsonb;
    deleted jsonb;
    res jsonb;
    i text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ab', 'cw'] LOOP
        created := '[]'; updated := '[]'; deleted := '[]';
        FOR i IN SELECT 'r' || g FROM generate_series(1, 30) g ORDER BY random() LIMIT 1 + floor(random() * 6)::int LOOP
            IF NOT EXISTS (SELECT FROM replica WHERE client = c AND tbl = t AND id = i) THEN
                created := created || jsonb_build_object('id', i, 'v', race_value(t));
            ELSIF random() < 0.8 THEN
                updated := updated || jsonb_build_object('id', i, 'v', race_value(t));
            ELSE
                deleted := deleted || to_jsonb(i);
            END IF;
        END LOOP;
        doc := doc || jsonb_build_object(t, jsonb_build_object('created', created, 'updated', updated, 'deleted', deleted));
    END LOOP;
    PERFORM set_config('stress.client', c::text, true);
    BEGIN
        res := sync_push(doc::json, (SELECT k.t FROM tok k WHERE k.client = c),
                         client_id => race_device(c))::jsonb;
        PERFORM count_outcome('push', CASE WHEN res ? 'experimentalRejectedIds' THEN 'rejected' ELSE 'ok' END);
        IF race_device(c) IS NOT NULL THEN
            PERFORM count_outcome('device-push', 'ok');
            FOREACH t IN ARRAY ARRAY['ab', 'cw'] LOOP
                PERFORM race_apply(c, t, doc -> t);
            END LOOP;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        PERFORM count_outcome('push', SQLSTATE);
    END;
    PERFORM set_config('stress.client', '', true);
END
$$;

-- A plain SQL write: an upsert or a delete of one random row of r1..r30, or
-- a delete of one of r31..r300.
CREATE FUNCTION race_write() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text := (ARRAY['ab', 'cw'])[1 + floor(random() * 2)::int];
    i text := 'r' || (1 + floor(random() * 30)::int);
BEGIN
    IF random() < 0.1 THEN
        EXECUTE format('DELETE FROM %I WHERE id = $1', t) USING 'r' || (31 + floor(random() * 270)::int);
    ELSIF random() < 0.75 THEN
        EXECUTE format('INSERT INTO %I VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = excluded.v', t) USING i, race_value(t);
    ELSE
        EXECUTE format('DELETE FROM %I WHERE id = $1', t) USING i;
    END IF;
    PERFORM count_outcome('write', 'ok');
EXCEPTION WHEN OTHERS THEN
    PERFORM count_outcome('write', SQLSTATE);
END
$$;

CREATE FUNCTION race_prune() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p record;
BEGIN
    SELECT * INTO p FROM sync_prune(interval '300 ms');
    PERFORM count_outcome('prune', 'ok');
    IF p.checkpoints > 0 THEN PERFORM count_outcome('prune', 'removed checkpoints'); END IF;
    IF p.row_changes > 0 THEN PERFORM count_outcome('prune', 'removed tombstones'); END IF;
EXCEPTION WHEN OTHERS THEN
    PERFORM count_outcome('prune', SQLSTATE);
END
$$;
