\set SHOW_CONTEXT never
TRUNCATE tok;
-- Devices, idempotent pushes, sync status and the monitoring views.
CREATE ROLE regress_monitor NOLOGIN IN ROLE pg_monitor;
-- (no autovacuum: an ANALYZE of memos between two statements would send the
-- next write's change records through SQL, which ends every device note)
CREATE TABLE memos (id text PRIMARY KEY, owner_id text NOT NULL, body text, n int CHECK (n >= 0))
    WITH (autovacuum_enabled = false);
CREATE TABLE boards (id text PRIMARY KEY, title text);
SELECT sync_register_table('memos', owner_column => 'owner_id');
SELECT sync_register_table('boards', conflict_policy => 'server_wins');
INSERT INTO boards VALUES ('b1', 'shared');

-- a pull and a push naming their device are recorded under the user
SELECT set_config('request.jwt.claims', '{"sub": "ann"}', false);
SELECT sync_pull(client_id => 'phone')::jsonb -> 'changes' -> 'boards' -> 'updated' AS boards;
SELECT (sync_pull(client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS t_phone \gset
SELECT sync_push('{"memos": {"created": [{"id": "m1", "body": "one"}, {"id": "m2", "body": "two"}]}}',
                 :t_phone, client_id => 'phone');
SELECT client_id, last_pull_at IS NOT NULL AS pulled, last_token = :t_phone AS last_token_is_the_returned_one,
       last_push_at IS NOT NULL AS pushed, pushes, records_pushed, conflicts, active, info
  FROM sync_clients();
-- calls without a client_id work and are not recorded
SELECT sync_pull() IS NOT NULL AS unnamed_pull;
SELECT count(*) AS devices FROM sync_clients();

-- an idle device polling writes nothing: the same token, within a minute
SELECT (sync_pull(:t_phone, client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS t_phone \gset
SELECT xmin AS row_version FROM _pg_sync.clients WHERE client_id = 'phone' \gset
SELECT (sync_pull(:t_phone, client_id => 'phone')::jsonb ->> 'timestamp')::bigint = :t_phone AS same_token;
SELECT (sync_pull(:t_phone, client_id => 'phone')::jsonb ->> 'timestamp')::bigint = :t_phone AS same_token;
SELECT xmin = :'row_version' AS device_row_not_rewritten FROM _pg_sync.clients WHERE client_id = 'phone';

-- info, a second device, conflicts counted (a policy settled them)
SELECT sync_client_info('phone', '{"platform": "ios", "app": "1.2.0"}');
SELECT (sync_pull(client_id => 'tablet')::jsonb ->> 'timestamp')::bigint AS t_tablet \gset
UPDATE boards SET title = 'changed on the server';
SELECT sync_push('{"boards": {"updated": [{"id": "b1", "title": "stale edit"}]}}', :t_tablet, client_id => 'tablet');
SELECT title FROM boards;
SELECT client_id, pushes, records_pushed, conflicts, info FROM sync_clients();

-- another user sees only their own devices and cannot touch ann's
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', false);
SELECT count(*) AS bobs_devices FROM sync_clients();
SELECT err($q$ SELECT sync_deactivate_client('phone') $q$);
SELECT err($q$ SELECT sync_activate_client('phone') $q$);
SELECT sync_status() AS bobs_status;
SELECT set_config('request.jwt.claims', '{"sub": "ann"}', false);

-- bad ids
SELECT err($q$ SELECT sync_pull(client_id => '') $q$);
SELECT err(format($q$ SELECT sync_pull(client_id => %L) $q$, repeat('d', 256)));
SELECT err(format($q$ SELECT sync_push('{}', NULL, push_id => %L) $q$, repeat('p', 256)));
SELECT err($q$ SELECT sync_client_info('', '{}') $q$);
SELECT err($q$ SELECT sync_client_info('phone', '[1]') $q$);
SELECT err($q$ SELECT sync_deactivate_client('never-seen') $q$);
-- without a user id: no devices to list
SELECT set_config('request.jwt.claims', '', false);
SELECT err($q$ SELECT * FROM sync_clients() $q$);
SELECT err($q$ SELECT sync_status() $q$);
SELECT set_config('request.jwt.claims', '{"sub": "ann"}', false);

-- a deactivated device gets nothing, not even in a read-only transaction;
-- other devices go on; activated again, it syncs
SELECT sync_deactivate_client('tablet');
SELECT err($q$ SELECT sync_pull(client_id => 'tablet') $q$);
SELECT err(format($q$ SELECT sync_push('{"memos": {"created": [{"id": "m9"}]}}', %s, client_id => 'tablet') $q$, :t_tablet));
BEGIN READ ONLY;
SELECT err($q$ SELECT sync_pull(client_id => 'tablet') $q$);
COMMIT;
SELECT count(*) AS m9 FROM memos WHERE id = 'm9';
SELECT sync_pull(client_id => 'phone') IS NOT NULL AS phone_still_syncs;
SELECT client_id, active FROM sync_clients();
SELECT sync_activate_client('tablet');
SELECT sync_pull(client_id => 'tablet') IS NOT NULL AS tablet_syncs_again;

-- a pull in a read-only transaction is served, and records nothing
BEGIN READ ONLY;
SELECT sync_pull(client_id => 'watch') IS NOT NULL AS pulled_read_only;
COMMIT;
SELECT count(*) AS watch_recorded FROM sync_clients() WHERE client_id = 'watch';

-- idempotent pushes: the same push_id and document again returns the stored
-- result and applies nothing; another document under the same id is refused
SELECT (sync_pull(client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS t_phone \gset
SELECT sync_push('{"memos": {"created": [{"id": "m3", "body": "once"}], "updated": [{"id": "m1", "body": "one, edited"}]}}',
                 :t_phone, client_id => 'phone', push_id => 'push-1') AS first_time;
UPDATE memos SET body = 'changed since' WHERE id = 'm3';
SELECT sync_push('{"memos": {"created": [{"id": "m3", "body": "once"}], "updated": [{"id": "m1", "body": "one, edited"}]}}',
                 :t_phone, client_id => 'phone', push_id => 'push-1') AS retried;
SELECT id, body FROM memos WHERE id IN ('m1', 'm3') ORDER BY id;
SELECT err(format($q$ SELECT sync_push('{"memos": {"created": [{"id": "m4"}]}}', %s, client_id => 'phone', push_id => 'push-1') $q$, :t_phone));
SELECT pushes FROM sync_clients() WHERE client_id = 'phone';
-- a failed push keeps nothing: its id can be used again
SELECT err(format($q$ SELECT sync_push('{"memos": {"created": [{"id": "m5", "n": -1}]}}', %s, client_id => 'phone', push_id => 'push-2') $q$, :t_phone));
SELECT sync_push('{"memos": {"created": [{"id": "m5", "n": 1}]}}', :t_phone, client_id => 'phone', push_id => 'push-2');
-- ids are per device and user: the same push_id on another device is another push
SELECT sync_push('{"memos": {"created": [{"id": "m6"}]}}', :t_phone, client_id => 'tablet', push_id => 'push-1');
SELECT count(*) AS ledger_entries FROM _pg_sync.push_ledger;

-- status: devices, last pull and push, and how many changed records the
-- device's last token has not seen (ann's memos and the shared boards)
SELECT (sync_pull(client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS t_phone \gset
SELECT sync_status('phone')::jsonb - 'last_pull_at' - 'last_push_at' AS phone_up_to_date;
INSERT INTO memos VALUES ('m7', 'ann', 'new'), ('x1', 'someone else', 'not ann''s');
DELETE FROM memos WHERE id = 'm2';
UPDATE boards SET title = 'again';
SELECT sync_status('phone')::jsonb - 'last_pull_at' - 'last_push_at' AS phone_behind;
SELECT (sync_status('phone')::jsonb ->> 'last_pull_at') IS NOT NULL AS has_last_pull,
       sync_status()::jsonb ->> 'pending_changes' AS no_device_no_pending;

-- monitoring views: counts and ids, for pg_monitor members only
SELECT table_name, rows_tracked, tombstones, changes_last_hour, pushes, records_pushed, rejected_records, conflicts
  FROM sync_stats_tables ORDER BY table_name;
SELECT user_id, client_id, lag_checkpoints >= 0 AS has_lag, pushes, conflicts, active
  FROM sync_stats_clients ORDER BY user_id, client_id;
SELECT newest_token >= oldest_token AS tokens, retention_pinned_by IS NOT NULL AS pinned,
       checkpoints_last_minute > 0 AS recent, devices, change_records_bytes > 0 AS sized
  FROM sync_stats;
SET ROLE regress_monitor;
SELECT count(*) > 0 AS monitor_reads FROM sync_stats_tables;
RESET ROLE;
CREATE ROLE regress_nobody NOLOGIN;
SET ROLE regress_nobody;
SELECT err($q$ SELECT * FROM sync_stats $q$);
RESET ROLE;
-- an app's role (no access to pg_sync's schema) sees its own device's status
GRANT SELECT ON memos, boards, tok TO regress_nobody;
SET ROLE regress_nobody;
SELECT (sync_pull(client_id => 'app-device')::jsonb ->> 'timestamp') IS NOT NULL AS pulled;
SELECT sync_status('app-device')::jsonb - 'last_pull_at' - 'last_push_at' AS app_device_status;
RESET ROLE;
REVOKE ALL ON memos, boards, tok FROM regress_nobody;

-- retention removes ledger entries and devices not seen for longer than it
SELECT pushes, clients FROM sync_prune(interval '1 hour');
UPDATE _pg_sync.push_ledger SET created_at = created_at - interval '2 hours' WHERE push_id = 'push-1';
UPDATE _pg_sync.clients SET first_seen = first_seen - interval '2 hours',
                            last_push_at = last_push_at - interval '2 hours' WHERE client_id = 'tablet';
UPDATE _pg_sync.client_pulls SET last_pull_at = last_pull_at - interval '2 hours' WHERE client_id = 'tablet';
SELECT pushes, clients FROM sync_prune(interval '1 hour');
SELECT client_id FROM sync_clients();
SELECT count(*) AS tablet_pulls_left FROM _pg_sync.client_pulls WHERE client_id = 'tablet';
-- a deactivated device stays (and stays refused), however long it is not seen
SELECT sync_deactivate_client('phone');
UPDATE _pg_sync.clients SET first_seen = first_seen - interval '2 hours',
                            last_push_at = last_push_at - interval '2 hours' WHERE client_id = 'phone';
UPDATE _pg_sync.client_pulls SET last_pull_at = last_pull_at - interval '2 hours' WHERE client_id = 'phone';
SELECT clients FROM sync_prune(interval '1 hour');
SELECT client_id, active FROM sync_clients();
SELECT sync_activate_client('phone');

-- a device's push finds its rows' change records by key, however many
-- records their owner has: a plan that took only the owner from the key
-- would read every one of cat's 20,000 records, for each push. After the
-- plan cache's first custom plans, pushes of 50 updates and 20 deletes
-- (the device's records noted, and forgotten for the deleted rows).
INSERT INTO memos SELECT 'c' || g, 'cat', 'bulk' FROM generate_series(1, 20000) g;
INSERT INTO memos SELECT 'o' || g, 'o' || g % 2000, 'other' FROM generate_series(1, 4000) g;
VACUUM ANALYZE _pg_sync.row_meta;
SELECT set_config('request.jwt.claims', '{"sub": "cat"}', false);
CREATE FUNCTION cat_push(i int) RETURNS text LANGUAGE sql AS $f$
    SELECT json_build_object('memos', json_build_object(
        'updated', (SELECT json_agg(json_build_object('id', 'c' || (i * 100 + j), 'body', 'edited'))
                      FROM generate_series(1, 50) j),
        'deleted', (SELECT json_agg('c' || (i * 100 + 50 + j)) FROM generate_series(1, 20) j)))::text $f$;
DO $$
BEGIN
    FOR i IN 1..8 LOOP
        PERFORM set_config('pg_sync_test.tok', sync_checkpoint()::text, false);
        COMMIT;
        IF sync_push(cat_push(i)::json, current_setting('pg_sync_test.tok')::bigint,
                     client_id => 'cat-phone')::text <> '{"created":0,"updated":50,"deleted":20}' THEN
            RAISE EXCEPTION 'push % of cat did not apply', i;
        END IF;
        COMMIT;
    END LOOP;
END $$;
SELECT sync_checkpoint() AS t_cat \gset
SELECT FROM pg_stat_force_next_flush();
SELECT sum(idx_tup_read) AS reads_before FROM pg_stat_all_indexes
 WHERE relid = '_pg_sync.row_meta'::regclass \gset
SELECT sync_push(cat_push(9)::json, :t_cat, client_id => 'cat-phone');
SELECT FROM pg_stat_force_next_flush();
SELECT sum(idx_tup_read) - :reads_before < 5000 AS records_read_by_key FROM pg_stat_all_indexes
 WHERE relid = '_pg_sync.row_meta'::regclass;
SELECT count(*) FILTER (WHERE body = 'edited') AS edited, count(*) FILTER (WHERE body = 'bulk') AS untouched,
       20000 - count(*) AS deleted
  FROM memos WHERE owner_id = 'cat';
SELECT count(*) AS records_noted_for_the_device FROM _pg_sync.row_meta
 WHERE owner = 'cat' AND origin IS NOT NULL AND NOT deleted;
DROP FUNCTION cat_push(int);

-- What the device has is noted in the change records the push's writes
-- record, not by a second update of each record afterwards, and the notes
-- are those the update writes: a push of 20 creates and 20 updates naming
-- the device, with the records written by SQL (which leaves the notes to
-- the update), then the same push again with the records written directly,
-- after the created rows were deleted.
CREATE FUNCTION cat_notes_push() RETURNS json LANGUAGE sql AS $f$
    SELECT json_build_object('memos', json_build_object(
        'created', (SELECT json_agg(json_build_object('id', 'made' || j, 'body', 'made ' || j, 'n', j))
                      FROM generate_series(1, 20) j),
        'updated', (SELECT json_agg(json_build_object('id', 'c' || (15000 + j), 'body', 'twice'))
                      FROM generate_series(1, 20) j))) $f$;
CREATE TABLE cat_notes AS SELECT id, origin, origin_hash, origin_cols FROM _pg_sync.row_meta WITH NO DATA;
SELECT sync_checkpoint() AS t_cat \gset
SET pg_sync.direct_capture = off;
SELECT sync_push(cat_notes_push(), :t_cat, client_id => 'cat-phone');
RESET pg_sync.direct_capture;
INSERT INTO cat_notes SELECT id, origin, origin_hash, origin_cols FROM _pg_sync.row_meta
 WHERE owner = 'cat' AND (id LIKE 'made%' OR id IN (SELECT 'c' || (15000 + j) FROM generate_series(1, 20) j));
SELECT count(*) AS noted_by_sql, count(DISTINCT origin_hash) AS distinct_hashes FROM cat_notes
 WHERE origin IS NOT NULL;
SELECT sync_checkpoint() AS t_cat \gset
SELECT sync_push(json_build_object('memos', json_build_object(
           'deleted', (SELECT json_agg('made' || j) FROM generate_series(1, 20) j))), :t_cat);
SELECT FROM pg_stat_force_next_flush();
SELECT sync_checkpoint() AS t_cat \gset
SELECT n_tup_upd AS record_updates_before FROM pg_stat_all_tables
 WHERE relid = '_pg_sync.row_meta'::regclass \gset
SELECT sync_push(cat_notes_push(), :t_cat, client_id => 'cat-phone');
SELECT FROM pg_stat_force_next_flush();
-- 40 records written, each once (the created ids' tombstones revived)
SELECT n_tup_upd - :record_updates_before AS record_updates FROM pg_stat_all_tables
 WHERE relid = '_pg_sync.row_meta'::regclass;
SELECT count(*) AS same_notes,
       count(*) FILTER (WHERE m.origin IS NOT DISTINCT FROM c.origin
                          AND m.origin_hash IS NOT DISTINCT FROM c.origin_hash
                          AND m.origin_cols IS NOT DISTINCT FROM c.origin_cols) AS equal
  FROM cat_notes c JOIN _pg_sync.row_meta m ON m.owner = 'cat' AND m.id = c.id;
DROP TABLE cat_notes;
DROP FUNCTION cat_notes_push();

-- A row the server writes after the device pushed it is sent to the device
-- again when it comes back to what the device pushed: the device has been
-- sent the version in between. Likewise a row the server deletes and then
-- creates again as the device pushed it. With the records written directly
-- and by SQL.
CREATE FUNCTION cat_changes(t bigint) RETURNS jsonb LANGUAGE sql AS $f$
    SELECT jsonb_build_object('updated', (SELECT coalesce(jsonb_agg(u ->> 'id' || '=' || (u ->> 'body') ORDER BY u ->> 'id'), '[]')
                                            FROM jsonb_array_elements(c -> 'updated') u),
                              'deleted', c -> 'deleted')
      FROM (SELECT sync_pull(t, client_id => 'cat-phone')::jsonb -> 'changes' -> 'memos' AS c) p $f$;
SELECT sync_checkpoint() AS t_cat \gset
SELECT sync_push('{"memos": {"created": [{"id": "back1", "body": "v1"}, {"id": "again1", "body": "v1"}]}}',
                 :t_cat, client_id => 'cat-phone');
SET pg_sync.direct_capture = off;
SELECT sync_checkpoint() AS t_cat \gset
SELECT sync_push('{"memos": {"created": [{"id": "back2", "body": "v1"}, {"id": "again2", "body": "v1"}]}}',
                 :t_cat, client_id => 'cat-phone');
RESET pg_sync.direct_capture;
SELECT sync_checkpoint() AS t_cat \gset
SELECT cat_changes(:t_cat) AS device_has_its_rows;
UPDATE memos SET body = 'v2' WHERE id = 'back1';
DELETE FROM memos WHERE id = 'again1';
SET pg_sync.direct_capture = off;
UPDATE memos SET body = 'v2' WHERE id = 'back2';
DELETE FROM memos WHERE id = 'again2';
RESET pg_sync.direct_capture;
SELECT cat_changes(:t_cat) AS device_sent_v2_and_deletes;
SELECT sync_checkpoint() AS t_cat \gset
UPDATE memos SET body = 'v1' WHERE id = 'back1';
INSERT INTO memos VALUES ('again1', 'cat', 'v1');
SET pg_sync.direct_capture = off;
UPDATE memos SET body = 'v1' WHERE id = 'back2';
INSERT INTO memos VALUES ('again2', 'cat', 'v1');
RESET pg_sync.direct_capture;
SELECT cat_changes(:t_cat) AS device_sent_v1_again;
SELECT count(*) AS notes_left FROM _pg_sync.row_meta
 WHERE owner = 'cat' AND id IN ('back1', 'back2', 'again1', 'again2') AND origin IS NOT NULL;
-- A record that sent some columns only: a server write of another column
-- is sent (the device's note covers the columns it sent); a write that
-- changes no column is not.
SELECT sync_checkpoint() AS t_cat \gset
SELECT sync_push('{"memos": {"created": [{"id": "part1", "body": "p"}, {"id": "keep1", "body": "k"}]}}',
                 :t_cat, client_id => 'cat-phone');
SELECT sync_checkpoint() AS t_cat \gset
UPDATE memos SET n = 5 WHERE id = 'part1';
UPDATE memos SET body = body WHERE id = 'keep1';
SELECT cat_changes(:t_cat) AS device_sent_the_other_column;
-- the same in one transaction, after a write that changed nothing
SELECT sync_checkpoint() AS t_cat \gset
SELECT sync_push('{"memos": {"created": [{"id": "part2", "body": "p"}]}}', :t_cat, client_id => 'cat-phone');
SELECT sync_checkpoint() AS t_cat \gset
BEGIN;
UPDATE memos SET body = body WHERE id = 'part2';
UPDATE memos SET n = 7 WHERE id = 'part2';
COMMIT;
SELECT cat_changes(:t_cat) AS device_sent_the_transaction_s_row;
-- and in the push's own transaction, with the records written directly and by SQL
SELECT sync_checkpoint() AS t_cat \gset
BEGIN;
SELECT sync_push('{"memos": {"created": [{"id": "part3", "body": "p"}]}}', :t_cat, client_id => 'cat-phone');
UPDATE memos SET n = 7 WHERE id = 'part3';
COMMIT;
BEGIN;
SET LOCAL pg_sync.direct_capture = off;
SELECT sync_push('{"memos": {"created": [{"id": "part4", "body": "p"}]}}', :t_cat, client_id => 'cat-phone');
UPDATE memos SET n = 7 WHERE id = 'part4';
COMMIT;
SELECT cat_changes(:t_cat) AS device_sent_the_push_transaction_s_rows;
DROP FUNCTION cat_changes(bigint);

SELECT set_config('request.jwt.claims', '', false);
SELECT sync_unregister_table(t) FROM unnest(ARRAY['memos', 'boards']::regclass[]) t;
DROP TABLE memos, boards;
DROP ROLE regress_monitor, regress_nobody;
