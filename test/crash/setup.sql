-- Crash safety: the schema both scenarios share.
--
-- Two synced tables: "notes" (per user, owner_id) and "tags" (shared). A
-- client is a row of "clients" (its user and its last token) and its rows of
-- "replica" (every record it has pulled, as pulled); pulls and the replica
-- update commit together, so after a crash a client's token and replica are
-- what it last committed. Pushes record what they pushed in "ledger" and
-- "ledger_items" in the push's own transaction. Errors during the load are
-- caught and kept in "unexpected" (committed), never lost with a client.
CREATE EXTENSION pg_sync;

CREATE TABLE notes (id text PRIMARY KEY, owner_id text NOT NULL, body text, n integer);
CREATE TABLE tags (id text PRIMARY KEY, name text, n integer);
SELECT sync_register_table('notes', owner_column => 'owner_id');
SELECT sync_register_table('tags');

CREATE TABLE clients (
    client  int PRIMARY KEY,
    user_id text NOT NULL,
    token   bigint,
    pulls   int NOT NULL DEFAULT 0,
    resets  int NOT NULL DEFAULT 0,
    pushes  int NOT NULL DEFAULT 0,
    expired_pushes int NOT NULL DEFAULT 0,
    pulled_at timestamptz,     -- when the last pull ended
    token_age interval         -- how old its checkpoint was then (diagnostics)
);
CREATE TABLE replica (client int, tbl text, id text, rec jsonb NOT NULL, PRIMARY KEY (client, tbl, id));
CREATE TABLE saved (name text PRIMARY KEY, v bigint);
CREATE TABLE unexpected (at timestamptz DEFAULT clock_timestamp(), who text, client int, state text, message text);

-- Applies one pull response to a client's replica.
CREATE FUNCTION apply_pull(c int, r jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT jsonb_object_keys(r -> 'changes') LOOP
        DELETE FROM replica x
         WHERE x.client = c AND x.tbl = t
           AND x.id IN (SELECT jsonb_array_elements_text(r -> 'changes' -> t -> 'deleted'));
        -- an id twice in one response fails here ("cannot affect row a second time")
        INSERT INTO replica
        SELECT c, t, e ->> 'id', e
          FROM jsonb_array_elements((r -> 'changes' -> t -> 'created') || (r -> 'changes' -> t -> 'updated')) e
        ON CONFLICT (client, tbl, id) DO UPDATE SET rec = excluded.rec;
    END LOOP;
END
$$;

-- One pull of a client with its last token, applied to its replica. An
-- expired token (SY002) resets the client: replica and token start over.
-- Any other error propagates. Returns the response plus "reset": bool.
CREATE FUNCTION crash_pull(c int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u   text;
    tok bigint;
    r   jsonb;
    was_reset boolean := false;
BEGIN
    SELECT k.user_id, k.token INTO STRICT u, tok FROM clients k WHERE k.client = c;
    IF tok IS NOT NULL THEN
        BEGIN
            r := sync_pull(tok, user_id => u)::jsonb;
        EXCEPTION WHEN SQLSTATE 'SY002' THEN
            was_reset := true;
        END;
    END IF;
    IF r IS NULL THEN
        -- first pull (or reset): the response is the whole state
        DELETE FROM replica WHERE client = c;
        r := sync_pull(NULL, user_id => u)::jsonb;
    END IF;
    PERFORM apply_pull(c, r);
    UPDATE clients
       SET token = (r ->> 'timestamp')::bigint, pulls = pulls + 1, resets = resets + was_reset::int,
           pulled_at = clock_timestamp(),
           token_age = clock_timestamp() - (SELECT p.created_at FROM _pg_sync.checkpoints p
                                             WHERE p.id = (r ->> 'timestamp')::bigint)
     WHERE client = c;
    RETURN r || jsonb_build_object('reset', was_reset);
END
$$;

-- What a client's last committed token answers now, without using the answer.
CREATE FUNCTION token_state(c int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sync_pull((SELECT k.token FROM clients k WHERE k.client = c),
                      user_id => (SELECT k.user_id FROM clients k WHERE k.client = c));
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- Every client's replica against the tables (in its scope), both ways.
CREATE FUNCTION replica_diff() RETURNS TABLE (client int, missing bigint, extra bigint) LANGUAGE sql AS $$
    WITH want AS (
        SELECT k.client, 'notes' AS tbl, nt.id, to_jsonb(nt) AS rec
          FROM clients k JOIN notes nt ON nt.owner_id = k.user_id
         WHERE k.token IS NOT NULL
        UNION ALL
        SELECT k.client, 'tags', tg.id, to_jsonb(tg)
          FROM clients k CROSS JOIN tags tg
         WHERE k.token IS NOT NULL),
    have AS (SELECT r.client, r.tbl, r.id, r.rec FROM replica r)
    SELECT k.client,
           (SELECT count(*) FROM (SELECT * FROM want w WHERE w.client = k.client
                                  EXCEPT SELECT * FROM have h WHERE h.client = k.client) x),
           (SELECT count(*) FROM (SELECT * FROM have h WHERE h.client = k.client
                                  EXCEPT SELECT * FROM want w WHERE w.client = k.client) x)
      FROM clients k
     WHERE k.token IS NOT NULL
     ORDER BY 1
$$;
