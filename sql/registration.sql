\set SHOW_CONTEXT never
TRUNCATE tok;
-- sync_register_table / sync_unregister_table
CREATE TABLE notes (id text PRIMARY KEY, body text);
INSERT INTO notes VALUES ('n1', 'before registration'), ('n2', 'also before');

SELECT sync_register_table('notes');
-- the capture triggers are installed
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'notes'::regclass ORDER BY tgname;
-- rows that existed before registration are part of the first pull
SELECT pull('r1');

-- registering twice
SELECT sync_register_table('notes');

-- tables without a usable key
CREATE TABLE nokey (a int, b text);
SELECT sync_register_table('nokey');
CREATE TABLE twokeys (a int, b int, PRIMARY KEY (a, b));
SELECT sync_register_table('twokeys');
CREATE TABLE tskey (at timestamptz PRIMARY KEY);
SELECT sync_register_table('tskey');
-- not a table
CREATE VIEW notes_view AS SELECT * FROM notes;
SELECT sync_register_table('notes_view');
CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
SELECT sync_register_table('parted');
SELECT sync_register_table('no_such_table');
SELECT sync_register_table(NULL);

-- bad configuration
CREATE TABLE todos (id uuid PRIMARY KEY, owner text, title text);
SELECT sync_register_table('todos', conflict_policy => 'last_write_wins');
SELECT sync_register_table('todos', conflict_policy => NULL);
SELECT sync_register_table('todos', owner_column => 'nobody');
SELECT sync_register_table('todos', owner_column => 'id');
SELECT sync_register_table('todos', options => '{"colour": "red"}');
SELECT sync_register_table('todos', options => '[]');
SELECT sync_register_table('todos', options => '{"name": "bad name; drop"}');
SELECT sync_register_table('todos', options => '{"pull_only": "yes"}');
-- nothing was recorded by the failed calls
SELECT count(*) AS registered FROM _pg_sync.tables;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'todos'::regclass;

-- two tables may not share a client name
CREATE SCHEMA other;
CREATE TABLE other.notes (id int PRIMARY KEY, body text);
INSERT INTO other.notes VALUES (7, 'other seven');
INSERT INTO todos VALUES ('00000000-0000-0000-0000-000000000001', 'u1', 'mine'),
                         ('00000000-0000-0000-0000-000000000002', 'u2', 'theirs');
SELECT sync_register_table('other.notes');
SELECT sync_register_table('other.notes', options => '{"name": "other_notes"}');
SELECT sync_register_table('todos', 'owner', 'client_wins');

SELECT relid, name, key_column, owner_column, conflict_policy, options
  FROM _pg_sync.tables ORDER BY table_id;

-- a table registered after a client's token arrives whole in its next pull
-- (todos is per user: u1 gets its own row only)
SELECT set_config('request.jwt.claims', '{"sub": "u1"}', false);
SELECT pull('r1');

-- unregistering
SELECT sync_unregister_table('other.notes');
SELECT sync_unregister_table('other.notes');
SELECT sync_unregister_table(NULL);
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'other.notes'::regclass;
SELECT count(*) AS history_left FROM _pg_sync.row_meta m
  WHERE NOT EXISTS (SELECT 1 FROM _pg_sync.tables t WHERE t.table_id = m.table_id);
SELECT pull('r1');

-- administration is not for everyone
CREATE ROLE sync_nobody;
SET ROLE sync_nobody;
SELECT sync_register_table('notes');
SELECT sync_unregister_table('notes');
SELECT * FROM _pg_sync.tables;
RESET ROLE;
DROP ROLE sync_nobody;

-- schema changes: a new column is synced from the next pull on; a renamed
-- key keeps working; a dropped table stops being synced
SELECT pull('r1') IS NOT NULL AS pulled;
ALTER TABLE notes ADD COLUMN pinned boolean DEFAULT false;
ALTER TABLE notes RENAME COLUMN id TO note_id;
UPDATE notes SET pinned = true WHERE note_id = 'n1';
SELECT pull('r1') -> 'notes' AS notes;
CREATE TABLE scratch (id int PRIMARY KEY);
SELECT sync_register_table('scratch');
INSERT INTO scratch VALUES (1);
DROP TABLE scratch;
SELECT name FROM _pg_sync.tables ORDER BY table_id;
SELECT pull('r1') ? 'scratch' AS scratch_still_pulled;
-- renamed key and owner columns are followed (the registration keeps
-- their new names); the key stays the registered column even when the
-- primary key moves (clients hold rows by its values): without a unique
-- index on it pushes fail cleanly, writes and pulls go on
ALTER TABLE todos RENAME COLUMN owner TO owned_by;
ALTER TABLE todos RENAME COLUMN id TO todo_id;
SELECT key_column, owner_column FROM _pg_sync.tables WHERE relid = 'todos'::regclass;
INSERT INTO todos (todo_id, owned_by, title) VALUES ('00000000-0000-0000-0000-000000000009', 'u1', 'after the renames');
SELECT pull() -> 'todos' -> 'updated' AS captured_after_renames;
ALTER TABLE todos RENAME COLUMN owned_by TO owner;
ALTER TABLE todos RENAME COLUMN todo_id TO id;
ALTER TABLE todos ADD COLUMN alt_id text NOT NULL DEFAULT 'x';
UPDATE todos SET alt_id = 'alt-' || id::text;
ALTER TABLE todos DROP CONSTRAINT todos_pkey, ADD PRIMARY KEY (alt_id);
UPDATE todos SET title = 'edited with the key moved' WHERE id = '00000000-0000-0000-0000-000000000009';
SELECT pull() -> 'todos' -> 'updated' AS still_by_the_registered_key;
SELECT err($q$ SELECT push('{"todos": {"created": [{"id": "00000000-0000-0000-0000-000000000011", "alt_id": "a11"}]}}') $q$);
ALTER TABLE todos DROP CONSTRAINT todos_pkey, ADD PRIMARY KEY (id);
ALTER TABLE todos DROP COLUMN alt_id;
SELECT push('{"todos": {"created": [{"id": "00000000-0000-0000-0000-000000000011"}]}}');
-- a dropped key or owner column fails every call naming it
ALTER TABLE todos RENAME COLUMN owner TO owner_old;
ALTER TABLE todos ADD COLUMN owner text;
ALTER TABLE todos DROP COLUMN owner_old;
SELECT err($q$ SELECT sync_pull() $q$);
SELECT err($q$ UPDATE todos SET title = 'blocked' $q$);

SELECT sync_unregister_table('notes');
SELECT sync_unregister_table('todos');
SELECT set_config('request.jwt.claims', '', false);
DROP TABLE notes, nokey, twokeys, tskey, todos, parted, other.notes CASCADE;
DROP SCHEMA other;
