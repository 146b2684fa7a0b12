\set SHOW_CONTEXT never
TRUNCATE tok;
-- errors carry specific SQLSTATEs; nothing is applied after an error
CREATE TABLE things (id text PRIMARY KEY, n int);
SELECT sync_register_table('things');
INSERT INTO things VALUES ('t1', 1);
SELECT pull() IS NOT NULL AS pulled;

-- tokens this database never issued: SY003 (the client resets)
SELECT err($q$ SELECT sync_pull(-1) $q$);
SELECT err($q$ SELECT sync_pull(9007199254740992) $q$);
SELECT err($q$ SELECT sync_pull(1) $q$);
SELECT err($q$ SELECT sync_pull(token() + 1000000) $q$);
SELECT err($q$ SELECT sync_push('{}', 12345) $q$);

-- the changes document
SELECT err($q$ SELECT sync_push('not json', token()) $q$);
SELECT err($q$ SELECT sync_push(NULL, token()) $q$);
SELECT err($q$ SELECT sync_push('[]', token()) $q$);
SELECT err($q$ SELECT sync_push('"things"', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": []}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": {}}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"updated": "t1"}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": [], "upserted": []}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": ["t1"]}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": [{"n": 1}]}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": [{"id": 7}]}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": [{"id": ""}]}}', token()) $q$);
SELECT err($q$ SELECT sync_push(json_build_object('things', json_build_object('created',
                 json_build_array(json_build_object('id', repeat('x', 256))))), token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"deleted": [1]}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": [], "created": []}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": [{"id": "t9", "n": NaN}]}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": [{"id": "t9", "n": 1e999}]}}', token()) $q$);
-- names crafted to look like SQL are only ever names (an id is data: any
-- characters are fine)
SELECT err($q$ SELECT sync_push('{"things; DROP TABLE things": {"created": [{"id": "x"}]}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"public.things": {"created": [{"id": "x"}]}}', token()) $q$);
SELECT err($q$ SELECT sync_push('{"things": {"created": [{"id": "x''); DROP TABLE things; --", "n; DROP TABLE things": 1, "\"n\"": 2}]}}', token()) $q$);
SELECT * FROM things ORDER BY id;
DELETE FROM things WHERE id <> 't1';
SELECT pull() IS NOT NULL AS pulled;

-- the record limit
SET pg_sync.max_push_records = 2;
SELECT err($q$ SELECT sync_push('{"things": {"created": [{"id": "a"}, {"id": "b"}], "deleted": ["c"]}}', token()) $q$);
RESET pg_sync.max_push_records;

-- per-user tables need a user: SQLSTATE 28000
CREATE TABLE mine (id text PRIMARY KEY, owner text);
SELECT sync_register_table('mine', owner_column => 'owner');
SELECT err($q$ SELECT sync_pull() $q$);
SELECT err($q$ SELECT sync_push('{"mine": {"created": [{"id": "m1"}]}}', token()) $q$);
SELECT set_config('request.jwt.claims', '{"role": "anon"}', false);
SELECT err($q$ SELECT sync_pull() $q$);
SELECT set_config('request.jwt.claims', '[1]', false);
SELECT err($q$ SELECT sync_pull() $q$);
SELECT set_config('request.jwt.claims', '{"sub": {"nested": 1}}', false);
SELECT err($q$ SELECT sync_pull() $q$);
SELECT set_config('request.jwt.claims', '', false);

-- nothing above changed anything
SELECT * FROM things ORDER BY id;
SELECT count(*) AS rows_in_mine FROM mine;
SELECT sync_unregister_table('things');
SELECT sync_unregister_table('mine');
DROP TABLE things, mine;
