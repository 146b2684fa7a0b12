\set SHOW_CONTEXT never
TRUNCATE tok;
-- Robustness: cancels are never replayed, owners compare as their column's
-- type, composite columns, limits on user ids, ambiguous claims, and
-- databases in other encodings.

-- A cancel (or statement timeout) during a push ends it at once: the
-- records are never replayed one by one after it. A trigger counts the rows
-- it sees (in a sequence: not undone by the rollback) and cancels the
-- statement at the third row.
CREATE TABLE counted (id text PRIMARY KEY, v int);
SELECT sync_register_table('counted');
CREATE SEQUENCE counted_rows;
CREATE FUNCTION count_and_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('counted_rows') = 3 THEN
        PERFORM pg_cancel_backend(pg_backend_pid());
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER count_and_cancel BEFORE INSERT ON counted FOR EACH ROW EXECUTE FUNCTION count_and_cancel();
SELECT pull() IS NOT NULL AS pulled;
SELECT err($q$ SELECT push('{"counted": {"created": [{"id": "r01"}, {"id": "r02"}, {"id": "r03"}, {"id": "r04"},
    {"id": "r05"}, {"id": "r06"}, {"id": "r07"}, {"id": "r08"}, {"id": "r09"}, {"id": "r10"}]}}') $q$);
SELECT last_value BETWEEN 3 AND 4 AS not_replayed, (SELECT count(*) FROM counted) AS rows_written FROM counted_rows;
-- a constraint error is still traced to its record (that replay is about data)
ALTER TABLE counted DISABLE TRIGGER count_and_cancel;
ALTER TABLE counted ADD CHECK (v < 10);
SELECT err($q$ SELECT push('{"counted": {"created": [{"id": "r01", "v": 1}, {"id": "r02", "v": 11}, {"id": "r03", "v": 2}]}}') $q$);
SELECT sync_unregister_table('counted');
DROP TABLE counted;
DROP SEQUENCE counted_rows;
DROP FUNCTION count_and_cancel();

-- Owners compare as the owner column's type: a uuid sub in upper case is
-- the same user as the canonical uuid the column holds.
CREATE TABLE lists (id text PRIMARY KEY, owner uuid NOT NULL, title text);
CREATE TABLE scores (id text PRIMARY KEY, owner_no integer, points integer);
SELECT sync_register_table('lists', owner_column => 'owner');
SELECT sync_register_table('scores', owner_column => 'owner_no');
SELECT set_config('request.jwt.claims', '{"sub": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}', false);
SELECT push('{"lists": {"created": [{"id": "l1", "title": "mine"}]}}', 'uu');
SELECT * FROM lists;
SELECT err($q$ SELECT push('{"scores": {"created": [{"id": "s1", "points": 1}]}}', 'uu') $q$);
DELETE FROM tok WHERE client = 'uu';
SELECT err($q$ SELECT pull('uu') $q$);
SELECT sync_unregister_table('scores');
SELECT sync_pull(user_id => 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')::jsonb #> '{changes,lists,updated}' AS lists_of_the_lower_case_id;
SELECT pull('uu') -> 'lists' AS lists_upper_case_sub;
SELECT push('{"lists": {"updated": [{"id": "l1", "title": "mine, edited"}]}}', 'uu');
SELECT * FROM lists;
UPDATE lists SET title = 'edited by SQL';
SELECT pull('uu') -> 'lists' AS sees_the_sql_edit;
-- a user id the owner column cannot hold: one clear error naming the table
SELECT set_config('request.jwt.claims', '{"sub": "u1"}', false);
SELECT err($q$ SELECT sync_pull() $q$);
SELECT err($q$ SELECT sync_push('{"lists": {"created": [{"id": "l2"}]}}', NULL) $q$);
SELECT sync_register_table('scores', owner_column => 'owner_no');
SELECT set_config('request.jwt.claims', '{"sub": 42}', false);
SELECT err($q$ SELECT sync_pull() $q$);
SELECT sync_unregister_table('lists');
SELECT sync_pull()::jsonb #> '{changes,scores}' AS scores_of_user_42;

-- user ids are at most 255 bytes; claims naming the user twice are refused
SELECT set_config('request.jwt.claims', json_build_object('sub', repeat('x', 256))::text, false);
SELECT err($q$ SELECT sync_pull() $q$);
SELECT err(format($q$ SELECT sync_pull(user_id => %L) $q$, repeat('x', 256)));
SELECT set_config('request.jwt.claims', '{"sub": "42", "role": "authenticated", "sub": "43"}', false);
SELECT err($q$ SELECT sync_pull() $q$);
SELECT set_config('request.jwt.claims', '{"sub": ["42"]}', false);
SELECT err($q$ SELECT sync_pull() $q$);
SELECT set_config('request.jwt.claims', '{"app": {"sub": "nested does not count"}, "sub": "42"}', false);
SELECT sync_pull()::jsonb #> '{changes,scores,updated}' AS nested_sub_ignored;
SELECT set_config('request.jwt.claims', '', false);
SELECT sync_unregister_table('scores');
DROP TABLE lists, scores;

-- composite-type columns travel as their text form
CREATE TYPE point2 AS (x integer, y integer);
CREATE TABLE shapes (id text PRIMARY KEY, p point2, ps point2[], label text);
SELECT sync_register_table('shapes');
SELECT push('{"shapes": {"created": [{"id": "s1", "p": "(1,2)", "ps": "{\"(3,4)\",\"(5,6)\"}", "label": "a"},
                                      {"id": "s2", "p": null, "label": "b"}]}}');
SELECT id, p, (p).y AS y, ps, label FROM shapes ORDER BY id;
SELECT pull() -> 'shapes' AS shapes;
SELECT push('{"shapes": {"updated": [{"id": "s2", "p": "(7,8)"}]}}');
SELECT id, p FROM shapes ORDER BY id;
SELECT err($q$ SELECT push('{"shapes": {"created": [{"id": "s3", "p": "(1,2,3)"}]}}') $q$);
SELECT sync_unregister_table('shapes');
DROP TABLE shapes;
DROP TYPE point2;

-- a database in another encoding: values arrive in it, escapes included,
-- and a character it cannot hold is a clean error
SELECT current_database() AS regress_db \gset
CREATE DATABASE regress_pg_sync_latin1 ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
\c regress_pg_sync_latin1
SET client_encoding = 'UTF8';
SET client_min_messages = warning;
CREATE EXTENSION pg_sync;
CREATE TABLE words (id text PRIMARY KEY, w text);
SELECT sync_register_table('words');
SELECT sync_push('{"words": {"created": [{"id": "café", "w": "naïve"}, {"id": "e2", "w": "\u00e9t\u00e9"}]}}', NULL);
SELECT id, w, convert_to(w, 'LATIN1') AS stored_bytes FROM words ORDER BY id;
SELECT sync_pull()::jsonb #> '{changes,words,updated}' AS pulled;
-- (the SQLSTATE alone: the message is the JSON parser's from PostgreSQL 17 on)
\set VERBOSITY sqlstate
SELECT sync_push('{"words": {"created": [{"id": "e3", "w": "\u4e2d"}]}}', NULL);
\set VERBOSITY default
\c :regress_db
DROP DATABASE regress_pg_sync_latin1;

-- sync_verify(): pg_sync's state against the tables, 0 problems when
-- consistent; writes that bypass the triggers show up
CREATE TABLE audited (id text PRIMARY KEY, owner_id text, v text);
SELECT sync_register_table('audited', owner_column => 'owner_id');
INSERT INTO audited VALUES ('a1', 'u1', 'one'), ('a2', 'u1', 'two'), ('a3', 'u2', 'three');
DELETE FROM audited WHERE id = 'a2';
UPDATE audited SET owner_id = 'u2' WHERE id = 'a1';
SELECT check_name, problems FROM sync_verify() WHERE table_name = 'audited' OR table_name IS NULL;
SET session_replication_role = replica;   -- triggers off: writes pg_sync never sees
INSERT INTO audited VALUES ('a2', 'u1', 'back, unseen');
DELETE FROM audited WHERE id = 'a3';
SET session_replication_role = origin;
ALTER TABLE audited DISABLE TRIGGER pg_sync_capture_update;
SELECT check_name, problems FROM sync_verify() WHERE table_name = 'audited' AND problems > 0;
SELECT sync_unregister_table('audited');
DROP TABLE audited;

-- a device that keeps pulling never holds a token older than
-- pg_sync.token_refresh (1 hour): an older one, even when nothing changed,
-- is replaced by a new checkpoint, so retention never takes it away
CREATE TABLE quiet (id text PRIMARY KEY);
SELECT sync_register_table('quiet');
SELECT (sync_pull()::jsonb ->> 'timestamp')::bigint AS t_quiet \gset
SELECT (sync_pull(:t_quiet)::jsonb ->> 'timestamp')::bigint = :t_quiet AS kept_while_young;
UPDATE _pg_sync.checkpoints SET created_at = created_at - interval '2 hours';
SELECT (sync_pull(:t_quiet)::jsonb ->> 'timestamp')::bigint AS t_fresh \gset
SELECT :t_fresh > :t_quiet AS refreshed,
       (SELECT now() - created_at < interval '1 minute' FROM _pg_sync.checkpoints WHERE id = :t_fresh) AS young;
SELECT sync_unregister_table('quiet');
DROP TABLE quiet;
