-- Scenario B (pg_ctl stop -m immediate under a mixed pgbench load): the
-- pgbench scripts' functions. Every error is caught and kept in
-- "unexpected" (except SY002, an expired token, which is counted), so
-- pgbench itself only ever fails when the server goes away.
INSERT INTO clients (client, user_id)
SELECT c, 'u' || ((c - 1) % 4 + 1) FROM generate_series(1, 4) c      -- pullers
UNION ALL SELECT c, 'u' || (c - 10) FROM generate_series(11, 13) c;   -- devices: pull, then push

CREATE SEQUENCE batch_seq;
-- what each committed push created, written in the push's transaction
CREATE TABLE ledger (batch bigint PRIMARY KEY, client int, user_id text, token bigint, records int, result jsonb);
CREATE TABLE ledger_items (batch bigint NOT NULL, tbl text, id text, rec jsonb NOT NULL, PRIMARY KEY (tbl, id));
CREATE TABLE writer_stats (writer int PRIMARY KEY, writes int NOT NULL DEFAULT 0);
INSERT INTO writer_stats SELECT g, 0 FROM generate_series(0, 1) g;
CREATE TABLE prune_stats (runs int, checkpoints bigint, tombstones bigint);
INSERT INTO prune_stats VALUES (0, 0, 0);

CREATE FUNCTION bench_pull(c int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crash_pull(c);
EXCEPTION WHEN OTHERS THEN
    INSERT INTO unexpected (who, client, state, message) VALUES ('pull', c, SQLSTATE, SQLERRM);
END
$$;

-- A push of 10-100 new records with unique ids (about a fifth of them tags)
-- with the client's token, and its ledger entry, in one transaction.
CREATE FUNCTION bench_push(c int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    b    bigint := nextval('batch_seq');
    nrec int := 10 + floor(random() * 91)::int;
    ntag int;
    u    text;
    tok  bigint;
    nrecs jsonb;
    trecs jsonb;
    res  jsonb;
BEGIN
    ntag := floor(random() * (nrec / 5 + 1))::int;
    SELECT k.user_id, k.token INTO STRICT u, tok FROM clients k WHERE k.client = c;
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', 'b' || b || '-' || g, 'owner_id', u, 'body', 'batch ' || b, 'n', g) ORDER BY g), '[]')
      INTO nrecs FROM generate_series(1, nrec - ntag) g;
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', 'b' || b || '-t' || g, 'name', 'batch ' || b, 'n', g) ORDER BY g), '[]')
      INTO trecs FROM generate_series(1, ntag) g;
    BEGIN
        res := sync_push(jsonb_build_object(
                   'notes', jsonb_build_object('created', nrecs, 'updated', '[]'::jsonb, 'deleted', '[]'::jsonb),
                   'tags', jsonb_build_object('created', trecs, 'updated', '[]'::jsonb, 'deleted', '[]'::jsonb))::json,
                tok, user_id => u)::jsonb;
        IF (res ->> 'created')::int <> nrec OR (res ->> 'updated')::int <> 0 OR res ? 'experimentalRejectedIds' THEN
            RAISE EXCEPTION 'push of % new records answered %', nrec, res;
        END IF;
        INSERT INTO ledger VALUES (b, c, u, tok, nrec, res);
        INSERT INTO ledger_items SELECT b, 'notes', e ->> 'id', e FROM jsonb_array_elements(nrecs) e;
        INSERT INTO ledger_items SELECT b, 'tags', e ->> 'id', e FROM jsonb_array_elements(trecs) e;
        UPDATE clients SET pushes = pushes + 1 WHERE client = c;
    EXCEPTION WHEN SQLSTATE 'SY002' THEN
        UPDATE clients SET expired_pushes = expired_pushes + 1 WHERE client = c;
    END;
EXCEPTION WHEN OTHERS THEN
    INSERT INTO unexpected (who, client, state, message) VALUES ('push', c, SQLSTATE, SQLERRM);
END
$$;

-- A plain SQL write of one row: upserts (also moving notes between users)
-- and deletes on ids no push uses.
CREATE FUNCTION bench_write(w int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    i int := 1 + floor(random() * 300)::int;
    u text := 'u' || (1 + floor(random() * 4)::int);
BEGIN
    IF random() < 0.7 THEN
        IF random() < 0.15 THEN
            DELETE FROM notes WHERE id = 'w-' || i;
        ELSE
            INSERT INTO notes VALUES ('w-' || i, u, 'sql ' || w, floor(random() * 1000)::int)
            ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id, body = excluded.body, n = excluded.n;
        END IF;
    ELSE
        IF random() < 0.15 THEN
            DELETE FROM tags WHERE id = 'wt-' || (i % 100);
        ELSE
            INSERT INTO tags VALUES ('wt-' || (i % 100), 'sql ' || w, floor(random() * 1000)::int)
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, n = excluded.n;
        END IF;
    END IF;
    UPDATE writer_stats SET writes = writes + 1 WHERE writer = w;
EXCEPTION WHEN OTHERS THEN
    INSERT INTO unexpected (who, client, state, message) VALUES ('write', w, SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION bench_prune() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p record;
BEGIN
    SELECT * INTO p FROM sync_prune(interval '1 second');
    UPDATE prune_stats SET runs = runs + 1, checkpoints = checkpoints + p.checkpoints,
                           tombstones = tombstones + p.row_changes;
EXCEPTION WHEN OTHERS THEN
    INSERT INTO unexpected (who, client, state, message) VALUES ('prune', NULL, SQLSTATE, SQLERRM);
END
$$;

-- what the load has committed so far, and whether a push is running now
CREATE VIEW b_progress AS
SELECT (SELECT count(*) FROM ledger) AS pushes,
       (SELECT sum(pulls) FROM clients WHERE client < 100) AS pulls,
       (SELECT sum(writes) FROM writer_stats) AS writes,
       (SELECT runs FROM prune_stats) AS prune_runs,
       (SELECT checkpoints FROM prune_stats) AS pruned,
       (SELECT count(*) FROM pg_stat_activity
         WHERE application_name = 'crash_device' AND state = 'active' AND query LIKE '%bench_push%') AS inflight;
