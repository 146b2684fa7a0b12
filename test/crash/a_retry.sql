-- Scenario A: the client retries the same push with the same token T0;
-- then every client pulls to the end and a new client pulls from scratch.
DROP TRIGGER hold_push ON notes;
CREATE TABLE a_retry AS
SELECT sync_push(a_push_doc(), (SELECT v FROM saved WHERE name = 'T0'), user_id => 'u1')::jsonb AS r;
SELECT 'retry result', r::text FROM a_retry;
SELECT 'retry records', (r ->> 'created')::int + (r ->> 'updated')::int + (r ->> 'deleted')::int FROM a_retry;
SELECT 'pushed rows present', (SELECT count(*) FROM notes WHERE id LIKE 'p-%' AND body = 'pushed' AND owner_id = 'u1')
     + (SELECT count(*) FROM notes WHERE id LIKE 'a-%' AND body = 'pushed' AND owner_id = 'u1')
     + (SELECT count(*) FROM tags WHERE id LIKE 'ptag-%' AND name = 'pushed');
INSERT INTO clients (client, user_id) VALUES (103, 'u1');
SELECT crash_pull(c) IS NOT NULL FROM generate_series(101, 103) c;
SELECT crash_pull(c) IS NOT NULL FROM generate_series(101, 103) c;
SELECT 'verify problems', count(*) FROM sync_verify() WHERE problems > 0;
SELECT 'replica rows', count(*) FROM replica;
SELECT 'replica differences', coalesce(sum(missing + extra), 0) FROM replica_diff();
SELECT 'replica differences: client ' || client, missing || ' missing, ' || extra || ' extra'
  FROM replica_diff() WHERE missing + extra > 0;
