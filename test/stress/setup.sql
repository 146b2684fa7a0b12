-- Convergence stress: writers commit in random order with sleeps inside their
-- transactions; pullers apply what they receive to their own replica.
CREATE EXTENSION IF NOT EXISTS pg_sync;
DROP TABLE IF EXISTS src, replica, seen, tok CASCADE;
CREATE TABLE src (id text PRIMARY KEY, v bigint NOT NULL, payload text);
SELECT sync_register_table('src');
INSERT INTO src SELECT 'k' || g, 0, 'initial' FROM generate_series(1, 200) g;

CREATE TABLE replica (client int, id text, v bigint, payload text, PRIMARY KEY (client, id));
-- every delivery of a row version: a version delivered twice to one client is a duplicate
CREATE TABLE seen (client int, id text, v bigint, n int NOT NULL DEFAULT 1, PRIMARY KEY (client, id, v));
CREATE TABLE tok (client int PRIMARY KEY, t bigint);
CREATE SEQUENCE version_seq;

-- One pull for a client, applied to its replica.
CREATE FUNCTION stress_pull(c int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    r := sync_pull((SELECT t FROM tok WHERE client = c))::jsonb;
    INSERT INTO tok VALUES (c, (r->>'timestamp')::bigint)
        ON CONFLICT (client) DO UPDATE SET t = excluded.t;
    DELETE FROM replica
     WHERE client = c AND id IN (SELECT jsonb_array_elements_text(r #> '{changes,src,deleted}'));
    INSERT INTO replica
    SELECT c, e->>'id', (e->>'v')::bigint, e->>'payload'
      FROM jsonb_array_elements(r #> '{changes,src,updated}') e
    ON CONFLICT (client, id) DO UPDATE SET v = excluded.v, payload = excluded.payload;
    INSERT INTO seen
    SELECT c, e->>'id', (e->>'v')::bigint
      FROM jsonb_array_elements(r #> '{changes,src,updated}') e
    ON CONFLICT (client, id, v) DO UPDATE SET n = seen.n + 1;
END
$$;
