\set SHOW_CONTEXT never
TRUNCATE tok;
-- Conflict policies: what a push does with a record whose server row was
-- written or deleted since the client's token (or, for version, whose
-- version is stale). Each section: a client pulls, the server writes, the
-- client pushes with the token it had.

-- the push result without its volatile parts (conflict ids)
CREATE FUNCTION res(r json) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_set(r::jsonb, '{conflicts}',
                     coalesce((SELECT jsonb_agg((e - 'conflict_id') || CASE WHEN e ? 'conflict_id'
                                                                         THEN '{"conflict_id": "<id>"}'::jsonb ELSE '{}'::jsonb END)
                                 FROM jsonb_array_elements(r::jsonb -> 'conflicts') e), '[]'))
      - CASE WHEN r::jsonb ? 'conflicts' THEN '' ELSE 'conflicts' END
$$;

------------------------------------------------------------------------------
-- options are checked at registration
CREATE TABLE p_lww (id text PRIMARY KEY, body text, updated_at timestamptz, n int);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'newest_wins')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'last_write_wins', options => '{"timestamp_col": "updated_at"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'last_write_wins', options => '{"timestamp_column": "changed_at"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'last_write_wins', options => '{"timestamp_column": "body"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'last_write_wins', options => '{"timestamp_column": "n"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'abort', options => '{"timestamp_column": "updated_at"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'version')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'version', options => '{"version_column": "body"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'version', options => '{"version_column": "n", "on_conflict": "latest"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'merge', options => '{"columns": {"body": "longest"}}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'merge', options => '{"columns": {"title": "max"}}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'merge', options => '{"columns": {"body": "union"}}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'merge', options => '{"columns": {"n": "append_by_id"}}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'merge', options => '{"columns": {"id": "max"}}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'merge', options => '{"columns": ["n"]}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'merge', options => '{"default": "union"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'custom')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'custom', options => '{"function": "public.no_such_rule"}')$$);
CREATE FUNCTION wrong_return(t text, s jsonb, c jsonb) RETURNS json LANGUAGE sql AS $$ SELECT c::json $$;
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'custom', options => '{"function": "public.wrong_return"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'manual', options => '{"push_mode": "some"}')$$);
SELECT err($$SELECT sync_register_table('p_lww', conflict_policy => 'manual', options => '[]')$$);
-- nothing of those registered the table
SELECT count(*) AS registered FROM _pg_sync.tables WHERE relid = 'p_lww'::regclass;

------------------------------------------------------------------------------
-- last_write_wins: the newer updated_at wins, a tie goes to the server
SELECT sync_register_table('p_lww', conflict_policy => 'last_write_wins');
SELECT options FROM _pg_sync.tables WHERE relid = 'p_lww'::regclass;
INSERT INTO p_lww VALUES
    ('older', 'server', '2026-01-01 10:00+00'),
    ('newer', 'server', '2026-01-01 10:00+00'),
    ('tie',   'server', '2026-01-01 10:00+00'),
    ('quiet', 'server', '2026-01-01 10:00+00');
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_lww SET body = 'server edit', updated_at = '2026-01-01 12:00+00' WHERE id IN ('older', 'newer', 'tie');
-- 1767268800000 = 2026-01-01 12:00 UTC
SELECT res(push($${"p_lww": {"updated": [
    {"id": "older", "body": "client", "updated_at": 1767265200000},
    {"id": "newer", "body": "client", "updated_at": 1767272400000},
    {"id": "tie",   "body": "client", "updated_at": 1767268800000},
    {"id": "quiet", "body": "client", "updated_at": 1767265200000}]}}$$));
-- quiet had no conflict: applied as pushed, though its timestamp is older
SELECT id, body, updated_at AT TIME ZONE 'UTC' AS updated_at FROM p_lww ORDER BY id;
-- a clock an hour fast: the timestamp is brought back to the server's now,
-- reported, stored clamped, and does not beat a later server edit
SELECT pull() IS NOT NULL AS pulled;
BEGIN;
SELECT res(push(format($${"p_lww": {"updated": [{"id": "quiet", "body": "fast clock", "updated_at": %s}]}}$$,
                       (extract(epoch FROM now() + interval '1 hour') * 1000)::bigint)));
SELECT body, updated_at = now() AS clamped_to_now FROM p_lww WHERE id = 'quiet';
COMMIT;
-- a server edit dated half an hour ahead: the clamped timestamp (the push's
-- now) loses to it, the client's own (an hour ahead) would have won; half an
-- hour, not a second, so that a slow machine never reaches it first
UPDATE p_lww SET body = 'server after', updated_at = clock_timestamp() + interval '30 minutes' WHERE id = 'quiet';
SELECT res(push(format($${"p_lww": {"updated": [{"id": "quiet", "body": "fast again", "updated_at": %s}]}}$$,
                       (extract(epoch FROM now() + interval '1 hour') * 1000)::bigint)));
SELECT body FROM p_lww WHERE id = 'quiet';
-- within pg_sync.max_clock_skew nothing is clamped
SET pg_sync.max_clock_skew = '2h';
SELECT pull() IS NOT NULL AS pulled;
SELECT res(push(format($${"p_lww": {"updated": [{"id": "quiet", "body": "skew allowed", "updated_at": %s}]}}$$,
                       (extract(epoch FROM now() + interval '1 hour') * 1000)::bigint)));
SELECT body, updated_at > now() + interval '59 minutes' AS kept_future FROM p_lww WHERE id = 'quiet';
RESET pg_sync.max_clock_skew;
-- (PostgreSQL 17 also names the unit of the range's ends: left out here)
SELECT regexp_replace(err($$SET pg_sync.max_clock_skew = '-1s'$$), ' ms(\)| \.\.)', '\1', 'g') AS err;
-- crossings: an update of a row the server deleted stays deleted; a delete of
-- a row the server changed keeps the row
INSERT INTO p_lww VALUES ('gone', 'server', '2026-01-01 10:00+00'), ('kept', 'server', '2026-01-01 10:00+00');
SELECT pull() IS NOT NULL AS pulled;
DELETE FROM p_lww WHERE id = 'gone';
UPDATE p_lww SET body = 'server edit' WHERE id = 'kept';
SELECT res(push($${"p_lww": {"updated": [{"id": "gone", "body": "client", "updated_at": 1767276000000}], "deleted": ["kept"]}}$$));
SELECT id, body FROM p_lww WHERE id IN ('gone', 'kept') ORDER BY id;
-- epoch milliseconds in a bigint column work the same
CREATE TABLE p_lww_ms (id text PRIMARY KEY, body text, changed bigint);
SELECT sync_register_table('p_lww_ms', conflict_policy => 'last_write_wins', options => '{"timestamp_column": "changed"}');
INSERT INTO p_lww_ms VALUES ('a', 'server', 1000), ('b', 'server', 1000);
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_lww_ms SET body = 'server edit', changed = 2000;
SELECT res(push($${"p_lww_ms": {"updated": [{"id": "a", "body": "client", "changed": 3000},
                                            {"id": "b", "body": "client", "changed": 1500}]}}$$));
SELECT * FROM p_lww_ms ORDER BY id;

------------------------------------------------------------------------------
-- version: pg_sync sets the version on every write, by push or SQL
CREATE TABLE p_ver (id text PRIMARY KEY, body text, version int);
SELECT sync_register_table('p_ver', conflict_policy => 'version');
INSERT INTO p_ver VALUES ('v1', 'server', 42), ('v2', 'server', NULL);
SELECT id, version FROM p_ver ORDER BY id;
UPDATE p_ver SET body = 'again', version = 1000 WHERE id = 'v1';
SELECT id, version FROM p_ver ORDER BY id;
SELECT pull() -> 'p_ver' -> 'created' AS pulled;
-- the current version: applied; a version the client sends is not stored
SELECT res(push('{"p_ver": {"updated": [{"id": "v1", "body": "client", "version": 2}], "created": [{"id": "v3", "body": "new", "version": 77}]}}'));
SELECT id, body, version FROM p_ver ORDER BY id;
-- a stale version is a conflict (on_conflict abort: SY001), also with a
-- token that saw the write
SELECT pull() IS NOT NULL AS pulled;
SELECT err($$SELECT push('{"p_ver": {"updated": [{"id": "v1", "body": "stale", "version": 2}]}}')$$);
SELECT err($$SELECT push('{"p_ver": {"updated": [{"id": "v1", "body": "no version"}]}}')$$);
SELECT res(push('{"p_ver": {"updated": [{"id": "v1", "body": "current", "version": 3}]}}'));
SELECT id, body, version FROM p_ver WHERE id = 'v1';
-- on_conflict server_wins, client_wins, manual
SELECT sync_alter_table('p_ver', options => '{"on_conflict": "server_wins"}');
SELECT res(push('{"p_ver": {"updated": [{"id": "v1", "body": "stale, server wins", "version": 1}]}}'));
SELECT id, body, version FROM p_ver WHERE id = 'v1';
SELECT sync_alter_table('p_ver', options => '{"on_conflict": "client_wins"}');
SELECT res(push('{"p_ver": {"updated": [{"id": "v1", "body": "stale, client wins", "version": 1}]}}'));
SELECT id, body, version FROM p_ver WHERE id = 'v1';
-- (the inbox is per user: a conflict belongs to the user who pushed)
SELECT sync_alter_table('p_ver', options => '{"on_conflict": "manual"}');
SELECT set_config('request.jwt.claims', '{"sub": "vic"}', false);
SELECT res(push('{"p_ver": {"updated": [{"id": "v1", "body": "stale, manual", "version": 1}]}}'));
SELECT id, body, version FROM p_ver WHERE id = 'v1';
SELECT table_name, record_id, client_record, server_record FROM sync_conflicts();
SELECT sync_resolve_conflict(conflict_id, 'merged', '{"id": "v1", "body": "merged by vic"}') ->> 'updated' AS updated
  FROM sync_conflicts();
SELECT id, body, version FROM p_ver WHERE id = 'v1';
SELECT set_config('request.jwt.claims', '', false);
SELECT err('SELECT * FROM sync_conflicts()');
-- crossings: a delete with a stale version under server_wins keeps the row;
-- an update of a row deleted since the token is a conflict (server_wins: stays deleted)
SELECT sync_alter_table('p_ver', options => '{"on_conflict": "server_wins"}');
SELECT pull() IS NOT NULL AS pulled;
DELETE FROM p_ver WHERE id = 'v2';
UPDATE p_ver SET body = 'server edit' WHERE id = 'v1';
SELECT res(push('{"p_ver": {"deleted": ["v1"], "updated": [{"id": "v2", "body": "client", "version": 1}]}}'));
SELECT id, body FROM p_ver ORDER BY id;
-- a delete of a row nobody changed since the token is no conflict
SELECT pull() IS NOT NULL AS pulled;
SELECT res(push('{"p_ver": {"deleted": ["v3"]}}'));
SELECT id, body FROM p_ver ORDER BY id;

------------------------------------------------------------------------------
-- merge: column by column
CREATE TABLE p_merge (
    id text PRIMARY KEY,
    completion int,
    best numeric,
    last_access timestamptz,
    tags text[],
    labels jsonb,
    messages jsonb,
    note text,
    server_note text,
    title text
);
SELECT sync_register_table('p_merge', conflict_policy => 'merge', options => $${
    "columns": {"completion": "max", "best": "min", "last_access": "latest", "tags": "union",
                "labels": "union", "messages": "append_by_id", "server_note": "server"},
    "timestamp_column": "last_access"}$$);
SELECT options FROM _pg_sync.tables WHERE relid = 'p_merge'::regclass;
INSERT INTO p_merge VALUES ('m1', 40, 9.5, '2026-01-01 10:00+00', '{a,b}', '["x"]',
                            '[{"id": 1, "text": "hi"}, {"id": 2, "text": "how are you"}]', 'n0', 's0', 'T0');
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_merge SET completion = 60, best = 9.0, last_access = '2026-01-01 12:00+00', tags = '{a,b,c}',
                   labels = '["x", "y"]',
                   messages = messages || '[{"id": 3, "text": "server reply"}]',
                   note = 'server note', server_note = 's1', title = 'server title'
 WHERE id = 'm1';
SELECT res(push($${"p_merge": {"updated": [{"id": "m1", "completion": 50, "best": 8.75,
    "last_access": 1767265200000, "tags": "{d,a}", "labels": "[\"z\", \"x\"]",
    "messages": "[{\"id\": 2, \"text\": \"how are you?\"}, {\"id\": 4, \"text\": \"client question\"}]",
    "note": "client note", "server_note": "client"}]}}$$));
SELECT completion, best, last_access AT TIME ZONE 'UTC' AS last_access, tags, labels, messages, note, server_note, title
  FROM p_merge WHERE id = 'm1';
-- the other way: the client's max and latest win; null adds nothing to a union
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_merge SET note = 'server again' WHERE id = 'm1';
SELECT res(push($${"p_merge": {"updated": [{"id": "m1", "completion": 90, "best": 10,
    "last_access": 1767276000000, "tags": null, "note": "client again"}]}}$$));
SELECT completion, best, last_access AT TIME ZONE 'UTC' AS last_access, tags, note FROM p_merge WHERE id = 'm1';
-- nothing of the client's left: the server's row stays, resolution server
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_merge SET completion = 100 WHERE id = 'm1';
SELECT res(push($${"p_merge": {"updated": [{"id": "m1", "completion": 95, "server_note": "ignored"}]}}$$));
SELECT completion, server_note FROM p_merge WHERE id = 'm1';
-- crossings: a deleted side keeps what the server has
INSERT INTO p_merge (id, completion) VALUES ('m2', 1), ('m3', 1);
SELECT pull() IS NOT NULL AS pulled;
DELETE FROM p_merge WHERE id = 'm2';
UPDATE p_merge SET completion = 2 WHERE id = 'm3';
SELECT res(push($${"p_merge": {"updated": [{"id": "m2", "completion": 5}], "deleted": ["m3"]}}$$));
SELECT id, completion FROM p_merge WHERE id IN ('m2', 'm3') ORDER BY id;
-- default: server
SELECT sync_alter_table('p_merge', options => '{"default": "server"}');
SELECT options FROM _pg_sync.tables WHERE relid = 'p_merge'::regclass;
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_merge SET completion = 7 WHERE id = 'm3';
SELECT res(push($${"p_merge": {"updated": [{"id": "m3", "completion": 99, "note": "mine"}]}}$$));
SELECT completion, note FROM p_merge WHERE id = 'm3';

------------------------------------------------------------------------------
-- custom: the progress tracker's rule. The higher progress_percent wins,
-- unless either is 0: then the newer updated_at wins.
CREATE TABLE p_progress (id text PRIMARY KEY, progress_percent int, updated_at bigint, who text);
CREATE TABLE rule_calls (table_name text, server jsonb, client jsonb, caller name);
CREATE FUNCTION progress_rule(table_name text, server jsonb, client jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rule_calls VALUES (table_name, server, client, current_user);
    IF server IS NULL OR client IS NULL THEN
        RETURN NULL;                        -- a deleted side: keep the server's
    ELSIF client->>'who' = 'broken' THEN
        RETURN '[1]';
    ELSIF client->>'who' = 'other id' THEN
        RETURN client || '{"id": "elsewhere"}';
    ELSIF (server->>'progress_percent')::int = 0 OR (client->>'progress_percent')::int = 0 THEN
        RETURN CASE WHEN (client->>'updated_at')::bigint > (server->>'updated_at')::bigint
                    THEN client ELSE server END;
    END IF;
    RETURN CASE WHEN (client->>'progress_percent')::int > (server->>'progress_percent')::int
                THEN client ELSE server || '{"who": "kept by rule"}' END;
END
$$;
SELECT sync_register_table('p_progress', conflict_policy => 'custom', options => '{"function": "public.progress_rule"}');
SELECT options->>'function' = 'public.progress_rule'::regproc::oid::text AS stored_as_oid
  FROM _pg_sync.tables WHERE relid = 'p_progress'::regclass;
INSERT INTO p_progress VALUES ('higher', 10, 100, 'server'), ('lower', 10, 100, 'server'),
                              ('zero', 10, 100, 'server'), ('zero_old', 10, 100, 'server');
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_progress SET progress_percent = 50, updated_at = 200, who = 'server edit';
UPDATE p_progress SET progress_percent = 0 WHERE id IN ('zero', 'zero_old');
SELECT res(push($${"p_progress": {"updated": [
    {"id": "higher",   "progress_percent": 70, "updated_at": 150, "who": "client"},
    {"id": "lower",    "progress_percent": 30, "updated_at": 300, "who": "client"},
    {"id": "zero",     "progress_percent": 20, "updated_at": 300, "who": "client"},
    {"id": "zero_old", "progress_percent": 20, "updated_at": 150, "who": "client"}]}}$$));
SELECT * FROM p_progress ORDER BY id;
-- the function saw both sides as a pull sends them, with the caller's rights
SELECT table_name, server, client, caller = current_user AS callers_rights FROM rule_calls WHERE client->>'id' = 'higher';
-- a delete crossing an update: the function gets null and keeps the server's row
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_progress SET who = 'server again' WHERE id = 'higher';
SELECT res(push('{"p_progress": {"deleted": ["higher"]}}'));
SELECT who FROM p_progress WHERE id = 'higher';
-- what the function returns must be the record's row
UPDATE p_progress SET who = 'server' WHERE id = 'lower';
SELECT err($$SELECT push('{"p_progress": {"updated": [{"id": "lower", "progress_percent": 1, "who": "broken"}]}}')$$);
SELECT err($$SELECT push('{"p_progress": {"updated": [{"id": "lower", "progress_percent": 1, "who": "other id"}]}}')$$);
SELECT * FROM p_progress WHERE id = 'lower';

------------------------------------------------------------------------------
-- manual: the server's row stays, the conflict waits in an inbox
CREATE TABLE p_manual (id text PRIMARY KEY, owner text, body text, n int);
SELECT sync_register_table('p_manual', 'owner', conflict_policy => 'manual');
SELECT set_config('request.jwt.claims', '{"sub": "ann"}', false);
INSERT INTO p_manual VALUES ('a1', 'ann', 'server', 1), ('a2', 'ann', 'server', 1), ('a3', 'ann', 'server', 1),
                            ('b1', 'bob', 'server', 1);
SELECT pull('ann') IS NOT NULL AS pulled;
UPDATE p_manual SET body = 'server edit', n = n + 1;
SELECT res(push('{"p_manual": {"updated": [{"id": "a1", "body": "ann edit"}, {"id": "a2", "body": "ann edit 2"}, {"id": "a3", "body": "ann edit 3"}]}}', 'ann'));
SELECT id, body, n FROM p_manual ORDER BY id;
SELECT table_name, record_id, client_record, server_record FROM sync_conflicts() ORDER BY record_id;
-- the conflict id in the result is the inbox's
CREATE TEMP TABLE pushed AS SELECT push('{"p_manual": {"updated": [{"id": "a1", "body": "ann again"}]}}', 'ann')::jsonb AS r;
SELECT (r #>> '{conflicts,0,conflict_id}')::bigint = (SELECT max(conflict_id) FROM sync_conflicts()) AS same_id FROM pushed;
SELECT record_id, client_record->>'body' AS client_body FROM sync_conflicts() ORDER BY conflict_id;
-- bob sees none of them and cannot resolve them
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', false);
SELECT count(*) AS bobs_conflicts FROM sync_conflicts();
SELECT err(format('SELECT sync_resolve_conflict(%s, %L)', (SELECT min(conflict_id) FROM _pg_sync.conflicts), 'client'));
SELECT set_config('request.jwt.claims', '{"sub": "ann"}', false);
-- resolving: client, server, merged; each once
CREATE TEMP TABLE ids AS SELECT record_id, min(conflict_id) AS c, max(conflict_id) AS c2
                           FROM sync_conflicts() GROUP BY record_id;
SELECT pull('ann2') IS NOT NULL AS pulled;
SELECT sync_resolve_conflict((SELECT c FROM ids WHERE record_id = 'a1'), 'client');
SELECT sync_resolve_conflict((SELECT c FROM ids WHERE record_id = 'a2'), 'server');
SELECT sync_resolve_conflict((SELECT c FROM ids WHERE record_id = 'a3'), 'merged', '{"id": "a3", "body": "merged by ann"}');
SELECT id, body, n FROM p_manual ORDER BY id;
-- every device pulls the resolution as a new change (server: the server's row is sent again)
SELECT pull('ann2');
SELECT record_id, client_record->>'body' AS client_body FROM sync_conflicts() ORDER BY conflict_id;
SELECT err(format('SELECT sync_resolve_conflict(%s, %L)', (SELECT c FROM ids WHERE record_id = 'a1'), 'client'));
SELECT err('SELECT sync_resolve_conflict(-1, ''server'')');
SELECT err(format('SELECT sync_resolve_conflict(%s, %L)', (SELECT c2 FROM ids WHERE record_id = 'a1'), 'mine'));
SELECT err(format('SELECT sync_resolve_conflict(%s, %L)', (SELECT c2 FROM ids WHERE record_id = 'a1'), 'merged'));
SELECT err(format('SELECT sync_resolve_conflict(%s, %L, %L)', (SELECT c2 FROM ids WHERE record_id = 'a1'), 'client', '{"id": "a1"}'));
SELECT err(format('SELECT sync_resolve_conflict(%s, %L, %L)', (SELECT c2 FROM ids WHERE record_id = 'a1'), 'merged', '{"id": "a2", "body": "x"}'));
SELECT err(format('SELECT sync_resolve_conflict(%s, %L, %L)', (SELECT c2 FROM ids WHERE record_id = 'a1'), 'merged', '{"id": "a1", "n": "many"}'));
-- the open one is still there after those errors
SELECT record_id, client_record->>'body' AS client_body FROM sync_conflicts() ORDER BY conflict_id;
SELECT sync_resolve_conflict((SELECT c2 FROM ids WHERE record_id = 'a1'), 'server');
SELECT count(*) AS open_conflicts FROM sync_conflicts();
SELECT id, body, n FROM p_manual ORDER BY id;
SELECT set_config('request.jwt.claims', '', false);
-- unregistering a table drops its conflicts
SELECT count(*) AS p_manual_conflicts FROM _pg_sync.conflicts k JOIN _pg_sync.tables t USING (table_id)
 WHERE t.relid = 'p_manual'::regclass;
SELECT sync_unregister_table('p_manual');
SELECT count(*) AS orphaned_conflicts FROM _pg_sync.conflicts k
 WHERE NOT EXISTS (SELECT FROM _pg_sync.tables t WHERE t.table_id = k.table_id);

------------------------------------------------------------------------------
-- insert_only: created once; the same record again is a no-op; any other
-- update, and every delete, is rejected per record
CREATE TABLE p_log (id text PRIMARY KEY, verb text, score int);
SELECT sync_register_table('p_log', conflict_policy => 'insert_only');
SELECT pull() IS NOT NULL AS pulled;
SELECT res(push('{"p_log": {"created": [{"id": "s1", "verb": "answered", "score": 3}, {"id": "s2", "verb": "completed", "score": 1}]}}'));
SELECT res(push('{"p_log": {"created": [{"id": "s1", "verb": "answered", "score": 3}]}}'));
-- (a pull first: the rows are not news to the client, no conflicts are listed)
SELECT pull() IS NOT NULL AS pulled;
SELECT res(push('{"p_log": {"created": [{"id": "s1", "verb": "answered", "score": 5}, {"id": "s3", "verb": "new", "score": 0}], "updated": [{"id": "s2", "score": 2}]}}'));
SELECT res(push('{"p_log": {"deleted": ["s1", "never-existed"]}}'));
SELECT * FROM p_log ORDER BY id;
-- the server changed s2 since the token: the rejected update is listed as a conflict too
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_log SET score = 9 WHERE id = 's2';
SELECT res(push('{"p_log": {"updated": [{"id": "s2", "score": 4}]}}'));
SELECT * FROM p_log ORDER BY id;

------------------------------------------------------------------------------
-- push_mode per_record: a record that breaks a constraint or a type is
-- rejected, the rest commits; the default stays all or nothing
CREATE TABLE p_rec (id text PRIMARY KEY, n int CHECK (n >= 0), body text NOT NULL DEFAULT '');
SELECT sync_register_table('p_rec', options => '{"push_mode": "per_record"}');
SELECT pull() IS NOT NULL AS pulled;
SELECT res(push('{"p_rec": {"created": [{"id": "r1", "n": 1}, {"id": "r2", "n": -1}, {"id": "r3", "n": "x"}, {"id": "r4", "body": null}, {"id": "r5", "n": 5}]}}'));
SELECT * FROM p_rec ORDER BY id;
SELECT pull('other') -> 'p_rec' AS others_see;
SELECT sync_alter_table('p_rec', options => '{}');
SELECT err($$SELECT push('{"p_rec": {"created": [{"id": "r6", "n": 1}, {"id": "r7", "n": -1}]}}')$$);
SELECT count(*) AS r6_rows FROM p_rec WHERE id = 'r6';

------------------------------------------------------------------------------
-- sync_alter_table: policy and options change, history and tokens stay
SELECT pull() IS NOT NULL AS pulled;
UPDATE p_rec SET n = 10 WHERE id = 'r1';
SELECT sync_alter_table('p_rec', 'client_wins');
SELECT conflict_policy, options FROM _pg_sync.tables WHERE relid = 'p_rec'::regclass;
-- the token from before the change still pulls just the change since
SELECT pull() -> 'p_rec';
SELECT sync_alter_table('p_rec', 'version', '{"version_column": "n"}');
SELECT conflict_policy, options FROM _pg_sync.tables WHERE relid = 'p_rec'::regclass;
UPDATE p_rec SET body = 'bumped' WHERE id = 'r1';
SELECT id, n FROM p_rec WHERE id = 'r1';
-- leaving version removes its trigger; NULL keeps the policy and, under the
-- same policy, all options; given options replace them
SELECT sync_alter_table('p_rec', 'server_wins');
UPDATE p_rec SET body = 'not bumped' WHERE id = 'r1';
SELECT id, n FROM p_rec WHERE id = 'r1';
SELECT sync_alter_table('p_rec', options => '{"push_mode": "per_record"}');
SELECT sync_alter_table('p_rec');
SELECT conflict_policy, options FROM _pg_sync.tables WHERE relid = 'p_rec'::regclass;
SELECT err($$SELECT sync_alter_table('p_rec', 'merge', '{"columns": {"n": "sum"}}')$$);
SELECT err($$SELECT sync_alter_table('p_rec', options => '{"name": "records"}')$$);
SELECT err($$SELECT sync_alter_table('tok')$$);
SELECT err($$SELECT sync_alter_table(NULL)$$);
SELECT conflict_policy, options FROM _pg_sync.tables WHERE relid = 'p_rec'::regclass;
CREATE ROLE regress_policy_stranger NOLOGIN;
GRANT EXECUTE ON FUNCTION sync_alter_table(regclass, text, jsonb) TO regress_policy_stranger;
SET ROLE regress_policy_stranger;
SELECT err($$SELECT sync_alter_table('p_rec', 'client_wins')$$);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION sync_alter_table(regclass, text, jsonb) FROM regress_policy_stranger;
DROP ROLE regress_policy_stranger;
SELECT sync_alter_table('p_merge', 'merge');
SELECT options FROM _pg_sync.tables WHERE relid = 'p_merge'::regclass;
SELECT sync_alter_table('p_lww', 'merge', '{"columns": {"n": "max"}, "push_mode": "per_record"}');
SELECT sync_alter_table('p_lww', 'manual');
SELECT conflict_policy, options FROM _pg_sync.tables WHERE relid = 'p_lww'::regclass;
-- custom: options given must name the function again; none keeps it (also
-- when the function is overloaded)
SELECT err($$SELECT sync_alter_table('p_progress', options => '{"push_mode": "per_record"}')$$);
CREATE FUNCTION progress_rule(table_name text, server json, client json) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
SELECT sync_alter_table('p_progress', 'custom');
SELECT sync_alter_table('p_progress', options => '{"push_mode": "per_record", "function": "public.progress_rule"}');
SELECT sync_alter_table('p_progress');
SELECT options->>'function' = 'public.progress_rule(text, jsonb, jsonb)'::regprocedure::oid::text AS function_kept,
       options->>'push_mode' AS push_mode
  FROM _pg_sync.tables WHERE relid = 'p_progress'::regclass;
DROP FUNCTION progress_rule(text, json, json);

SELECT sync_unregister_table(t) FROM unnest(ARRAY['p_lww', 'p_lww_ms', 'p_ver', 'p_merge', 'p_progress',
                                                  'p_log', 'p_rec']::regclass[]) t;
SELECT count(*) AS left_conflicts FROM _pg_sync.conflicts;
SELECT count(*) AS version_triggers FROM pg_trigger WHERE tgname = 'pg_sync_version';
DROP TABLE p_lww, p_lww_ms, p_ver, p_merge, p_progress, rule_calls, p_manual, p_log, p_rec;
DROP FUNCTION progress_rule(text, jsonb, jsonb), wrong_return(text, jsonb, jsonb), res(json);
