\set SHOW_CONTEXT never
TRUNCATE tok;
-- Multi-user access, the PostgREST/Supabase way: per request, the HTTP layer
-- runs SET LOCAL ROLE and sets request.jwt.claims, then calls the function.
CREATE ROLE regress_anon NOLOGIN;
CREATE ROLE regress_authenticated NOLOGIN;
CREATE ROLE regress_service NOLOGIN;
GRANT ALL ON tok TO regress_anon, regress_authenticated, regress_service;
SET pg_sync.trusted_role = 'regress_service';

CREATE TABLE notes (id text PRIMARY KEY, owner_id text NOT NULL, body text);
CREATE TABLE announcements (id text PRIMARY KEY, body text);
CREATE TABLE cards (id text PRIMARY KEY, body text, hidden boolean NOT NULL DEFAULT false);
ALTER TABLE cards ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible_cards ON cards USING (NOT hidden) WITH CHECK (NOT hidden);
GRANT SELECT, INSERT, UPDATE, DELETE ON notes, cards TO regress_authenticated, regress_service;
GRANT SELECT ON announcements TO regress_anon, regress_authenticated, regress_service;
SELECT sync_register_table('notes', owner_column => 'owner_id');
SELECT sync_register_table('announcements', options => '{"pull_only": true}');
SELECT sync_register_table('cards');
INSERT INTO notes VALUES ('a1', 'alice', 'alice one'), ('a2', 'alice', 'alice two'), ('b1', 'bob', 'bob one');
INSERT INTO announcements VALUES ('n1', 'welcome');
INSERT INTO cards VALUES ('c1', 'public card', false), ('c2', 'hidden card', true);

-- each user pulls their own rows, shared tables, and the cards RLS lets them see
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "alice", "role": "authenticated"}', true);
SELECT pull('alice');
COMMIT;
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "bob", "role": "authenticated"}', true);
SELECT pull('bob');
COMMIT;

-- an anonymous caller has no user id: 28000; naming one is for trusted roles: 42501
BEGIN;
SET LOCAL ROLE regress_anon;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true);
SELECT err($q$ SELECT sync_pull() $q$);
SELECT err($q$ SELECT sync_pull(user_id => 'alice') $q$);
SELECT err($q$ SELECT sync_push('{"notes": {"created": [{"id": "x1", "body": "anon"}]}}', NULL, user_id => 'alice') $q$);
COMMIT;
-- an authenticated user may not name another user either
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', true);
SELECT err($q$ SELECT sync_pull(user_id => 'alice') $q$);
COMMIT;
-- trusted server code (a service role) names the user explicitly
BEGIN;
SET LOCAL ROLE regress_service;
SELECT sync_pull(user_id => 'bob')::jsonb #> '{changes,notes,updated}' AS bobs_notes;
COMMIT;

-- pushes: the owner column is always the caller
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "alice"}', true);
SELECT push('{"notes": {"created": [{"id": "a3", "owner_id": "bob", "body": "mine, not bob''s"}]}}', 'alice');
COMMIT;
SELECT * FROM notes WHERE id = 'a3';

-- another user's rows: never taken over, never revealed. Updates and creates
-- of their ids are rejected per record (experimentalRejectedIds: WatermelonDB
-- keeps those records unsynced); deleting them is ignored like a missing row.
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', true);
SELECT pull('bob') -> 'notes' AS bob_notes;
SELECT push('{"notes": {"created": [{"id": "a1", "body": "taken over?"}],
                         "updated": [{"id": "a2", "body": "edited by bob"}, {"id": "b1", "body": "bob edits his own"}],
                         "deleted": ["a3"]}}', 'bob');
COMMIT;
SELECT * FROM notes ORDER BY id;

-- row-level security applies on top: hidden rows are neither pulled nor writable
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "alice"}', true);
SELECT pull('alice') IS NOT NULL AS pulled;
SELECT push('{"cards": {"updated": [{"id": "c2", "body": "overwrite a hidden card"}, {"id": "c1", "body": "public card, edited"}],
                         "deleted": []}}', 'alice');
COMMIT;
SELECT * FROM cards ORDER BY id;

-- access changes: a row leaving a user's scope is deleted on their device
UPDATE notes SET owner_id = 'bob' WHERE id = 'a2';
UPDATE cards SET hidden = true WHERE id = 'c1';
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "alice"}', true);
SELECT pull('alice');
COMMIT;
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', true);
SELECT pull('bob') -> 'notes' AS bob_notes;
COMMIT;

-- pull-only tables and GRANTs: pushed records are rejected or refused, nothing changes
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "alice"}', true);
SELECT push('{"announcements": {"updated": [{"id": "n1", "body": "defaced"}]}}', 'alice');
COMMIT;
REVOKE UPDATE ON cards FROM regress_authenticated;
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "alice"}', true);
SELECT err($q$ SELECT push('{"cards": {"updated": [{"id": "c3", "body": "new"}]}}', 'alice') $q$);
-- the internal schema is closed
SELECT err($q$ SELECT count(*) FROM _pg_sync.row_meta $q$);
SELECT err($q$ SELECT sync_checkpoint() $q$);
SELECT err($q$ SELECT sync_prune() $q$);
COMMIT;
SELECT body FROM announcements;
SELECT count(*) AS cards FROM cards;

RESET pg_sync.trusted_role;
-- registering, altering and unregistering need the table's owner, also when
-- the session's user could (a superuser or PostgREST's authenticator doing
-- SET ROLE to the request's role): the role that calls is what counts
GRANT EXECUTE ON FUNCTION sync_register_table(regclass, name, text, jsonb),
                          sync_unregister_table(regclass),
                          sync_alter_table(regclass, text, jsonb) TO regress_authenticated;
CREATE TABLE strangers (id text PRIMARY KEY);
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT err($q$ SELECT sync_register_table('strangers') $q$);
SELECT err($q$ SELECT sync_alter_table('notes', 'client_wins') $q$);
SELECT err($q$ SELECT sync_unregister_table('notes') $q$);
COMMIT;
SELECT conflict_policy FROM _pg_sync.tables WHERE relid = 'notes'::regclass;
SELECT count(*) AS strangers_registered FROM _pg_sync.tables WHERE relid = 'strangers'::regclass;
-- a role that owns the table may, through SET ROLE as well
ALTER TABLE strangers OWNER TO regress_authenticated;
BEGIN;
SET LOCAL ROLE regress_authenticated;
SELECT sync_register_table('strangers');
SELECT sync_alter_table('strangers', 'server_wins');
SELECT sync_unregister_table('strangers');
COMMIT;
REVOKE EXECUTE ON FUNCTION sync_register_table(regclass, name, text, jsonb),
                           sync_unregister_table(regclass),
                           sync_alter_table(regclass, text, jsonb) FROM regress_authenticated;
DROP TABLE strangers;
SELECT sync_unregister_table(t) FROM unnest(ARRAY['notes', 'announcements', 'cards']::regclass[]) t;
DROP TABLE notes, announcements, cards;
REVOKE ALL ON tok FROM regress_anon, regress_authenticated, regress_service;
DROP ROLE regress_anon, regress_authenticated, regress_service;
