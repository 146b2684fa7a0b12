\set SHOW_CONTEXT never
TRUNCATE tok;
-- deletes leave tombstones; tombstones never shadow a re-created row
CREATE TABLE items (id text PRIMARY KEY, v int);
SELECT sync_register_table('items');
INSERT INTO items SELECT 'i' || g, g FROM generate_series(1, 5) g;
SELECT pull() IS NOT NULL AS pulled;

-- deletes by any SQL, and by push
DELETE FROM items WHERE id IN ('i1', 'i2');
SELECT push('{"items": {"deleted": ["i3"]}}');
SELECT id, deleted FROM _pg_sync.row_meta m JOIN _pg_sync.tables t USING (table_id)
 WHERE t.name = 'items' ORDER BY id;
SELECT pull();
-- first pulls never carry tombstones
SELECT pull('newcomer');

-- re-creating a deleted id: the row is live again, not shadowed
INSERT INTO items VALUES ('i1', 100);
SELECT pull();
SELECT pull('newcomer');
-- by push too, and a delete and re-create within one transaction
SELECT push('{"items": {"created": [{"id": "i2", "v": 200}]}}');
BEGIN;
DELETE FROM items WHERE id = 'i4';
INSERT INTO items VALUES ('i4', 400);
COMMIT;
SELECT pull();

-- a key that changes leaves a tombstone under the old key
UPDATE items SET id = 'i5-renamed' WHERE id = 'i5';
SELECT pull();

-- TRUNCATE tombstones every row
TRUNCATE items;
SELECT pull();
SELECT pull('newcomer');

-- rolled back deletes send no delete. Until VACUUM, the index entries of
-- the record versions they wrote make the next pull send the row again, as
-- it is (v = 1)
INSERT INTO items VALUES ('keep', 1);
SELECT pull() IS NOT NULL AS pulled;
BEGIN;
DELETE FROM items WHERE id = 'keep';
ROLLBACK;
BEGIN;
SAVEPOINT s;
DELETE FROM items WHERE id = 'keep';
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT pull();
-- rolled back inserts of ids no row has: nothing, not a delete (a device
-- would destroy a record of that id it holds)
BEGIN;
INSERT INTO items VALUES ('never', 1);
ROLLBACK;
BEGIN;
SAVEPOINT s;
INSERT INTO items VALUES ('never-either', 1);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT pull();

-- owner-scoped tables: a row that moves to another owner is a delete for
-- the old owner and a new row for the new one
CREATE TABLE docs (id text PRIMARY KEY, owner text, title text);
SELECT sync_register_table('docs', owner_column => 'owner');
INSERT INTO docs VALUES ('d1', 'alice', 'shared later'), ('d2', 'bob', 'bob''s');
SELECT set_config('request.jwt.claims', '{"sub": "alice"}', false);
SELECT pull('alice') -> 'docs' AS alice_docs;
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', false);
SELECT pull('bob') -> 'docs' AS bob_docs;
UPDATE docs SET owner = 'bob' WHERE id = 'd1';
SELECT pull('bob') -> 'docs' AS bob_docs;
SELECT set_config('request.jwt.claims', '{"sub": "alice"}', false);
SELECT pull('alice') -> 'docs' AS alice_docs;
SELECT set_config('request.jwt.claims', '', false);
SELECT sync_unregister_table('docs');

-- retention: sync_prune drops old checkpoints and the tombstones no token
-- needs; a token older than that is refused with SQLSTATE SY002. A run keeps
-- the tombstones the checkpoints it removes would need (a transaction that
-- began before it committed may still use them); the next run, once no such
-- transaction is left, removes them.
SELECT token() AS old_token \gset
SELECT sync_checkpoint() > 0 AS checkpoint_recorded;
SELECT count(*) > 0 AS has_tombstones FROM _pg_sync.row_meta WHERE deleted;
SELECT checkpoints > 0 AS pruned_checkpoints, row_changes AS pruned_history
  FROM sync_prune(interval '0');
SELECT checkpoints AS pruned_checkpoints, row_changes > 0 AS pruned_history
  FROM sync_prune(interval '0');
SELECT count(*) AS tombstones_left FROM _pg_sync.row_meta WHERE deleted;
SELECT err(format('SELECT sync_pull(%s)', :old_token));
SELECT err(format('SELECT sync_push(''{}'', %s)', :old_token));
-- the newest checkpoint always survives, so a fresh pull still works
SELECT pull('after-prune') -> 'items' AS items;
SELECT sync_prune(NULL);

SELECT sync_unregister_table('items');
DROP TABLE items, docs;
