\set SHOW_CONTEXT never
TRUNCATE tok;
-- sync_pull: response shape, first and later pulls
CREATE TABLE projects (id text PRIMARY KEY, name text NOT NULL, _status text, _changed text);
CREATE TABLE tasks (uid uuid PRIMARY KEY, project_id text, title text, id int);
SELECT sync_register_table('projects');
SELECT sync_register_table('tasks', options => '{"name": "todo_items"}');

-- every registered table appears, with empty lists, even when empty
SELECT pull();
SELECT p ? 'timestamp' AS has_timestamp, jsonb_typeof(p->'timestamp') AS timestamp_type,
       (p->>'timestamp')::numeric > 0 AND (p->>'timestamp')::numeric < 2^53 AS in_range,
       (SELECT array_agg(k) FROM jsonb_object_keys(p) k) AS keys
  FROM (SELECT sync_pull()::jsonb AS p) s;

INSERT INTO projects VALUES ('p1', 'Home', 'created', 'name'), ('p2', 'Work', NULL, NULL);
INSERT INTO tasks VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'p1', 'Buy milk', 5);
-- live rows travel in "updated"; _status and _changed columns never travel;
-- a key column not named id travels as "id" (a column named id is left out)
SELECT pull();
-- nothing changed: nothing comes
SELECT pull();
-- and polling when nothing changed keeps the token and records no checkpoint
SELECT token() AS polled_token, (SELECT count(*) FROM _pg_sync.checkpoints) AS checkpoints \gset
SELECT pull() IS NOT NULL AS pulled;
SELECT pull() IS NOT NULL AS pulled;
SELECT token() = :polled_token AS same_token,
       (SELECT count(*) FROM _pg_sync.checkpoints) = :checkpoints AS no_new_checkpoint;

-- later pulls: changed rows with their current state, deleted ids
UPDATE projects SET name = 'House' WHERE id = 'p1';
DELETE FROM projects WHERE id = 'p2';
INSERT INTO projects VALUES ('p3', 'Garden');
SELECT pull();
-- a row changed several times, and one created and deleted in between
UPDATE projects SET name = 'Home again' WHERE id = 'p1';
UPDATE projects SET name = 'Home, finally' WHERE id = 'p1';
INSERT INTO projects VALUES ('tmp', 'short-lived');
DELETE FROM projects WHERE id = 'tmp';
SELECT pull();
-- an id is never both in a list and in "deleted"
DELETE FROM projects WHERE id = 'p3';
INSERT INTO projects VALUES ('p3', 'Garden, again');
SELECT pull();

-- another client's first pull: every live row, no tombstones
SELECT pull('fresh');
-- last_pulled_at = 0 is a first pull too
SELECT jsonb_array_length(p #> '{changes,projects,updated}') AS live_rows,
       jsonb_array_length(p #> '{changes,projects,deleted}') AS tombstones
  FROM (SELECT sync_pull(0)::jsonb AS p) s;

-- named arguments, as HTTP layers call it
SELECT jsonb_typeof(sync_pull(last_pulled_at => token(), schema_version => 3)::jsonb->'changes');
-- a schema migration resends the tables it names whole
SELECT jsonb_array_length(sync_pull(token(), 2, '{"from": 1, "tables": ["projects"], "columns": []}')::jsonb
       #> '{changes,projects,updated}') AS resent_projects;
SELECT jsonb_array_length(sync_pull(token(), 2, '{"from": 1, "tables": [], "columns": [{"table": "todo_items", "columns": ["title"]}]}')::jsonb
       #> '{changes,todo_items,updated}') AS resent_tasks;
SELECT sync_pull(token(), 2, '[1]');
SELECT sync_pull(token(), -1);

-- a pull in a transaction that has written leaves that transaction's own
-- rows for a later pull (they are not committed yet), also those written
-- after the pull in the same transaction
BEGIN;
INSERT INTO projects VALUES ('p9', 'written before the pull');
SELECT pull();
UPDATE projects SET name = 'written after the pull' WHERE id = 'p9';
COMMIT;
SELECT pull();
SELECT pull();
-- the same with a rollback: nothing arrives
BEGIN;
INSERT INTO projects VALUES ('p10', 'rolled back');
SELECT sync_pull(token()) IS NOT NULL AS pulled;
ROLLBACK;
SELECT pull();
-- several pulls in one statement
SELECT count(*) AS pulls FROM (SELECT sync_pull(token()) FROM generate_series(1, 3)) s;

-- plain SQL changes and pushed ones are synced alike
SELECT push('{"projects": {"created": [{"id": "p4", "name": "Pushed"}], "updated": [], "deleted": []}}');
SELECT pull();

SELECT sync_unregister_table('projects');
SELECT sync_unregister_table('tasks');
DROP TABLE projects, tasks;
