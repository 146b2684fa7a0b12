-- ALTER EXTENSION pg_sync UPDATE from 0.1, with registrations, change
-- history and tokens in place: clients keep their tokens, and the updated
-- extension has exactly the objects a fresh install has.
\set SHOW_CONTEXT never
SELECT current_database() AS regress_db \gset
CREATE DATABASE regress_pg_sync_upgrade;
\c regress_pg_sync_upgrade
SET client_min_messages = warning;
CREATE EXTENSION pg_sync VERSION '0.1';
CREATE FUNCTION try_pull(tok bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN sync_pull(tok, user_id => 'u1')::jsonb -> 'changes';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
SELECT extversion FROM pg_extension WHERE extname = 'pg_sync';
CREATE TABLE items (id text PRIMARY KEY, owner_id text, v text);
SELECT sync_register_table('items', owner_column => 'owner_id');
INSERT INTO items VALUES ('a', 'u1', 'one'), ('b', 'u1', 'two'), ('c', 'u2', 'other user');
SELECT (sync_pull(user_id => 'u1')::jsonb->>'timestamp')::bigint AS t_old \gset
-- a token 0.1 issued and pruned: older than every checkpoint left
SELECT sync_checkpoint() > 0 AS checkpoint;
SELECT checkpoints > 0 AS pruned FROM sync_prune(interval '0');
SELECT (sync_pull(user_id => 'u1')::jsonb->>'timestamp')::bigint AS t_mid \gset
UPDATE items SET v = 'two, changed' WHERE id = 'b';
DELETE FROM items WHERE id = 'a';

-- the new library already serves the 0.1 schema (binaries are installed first)
SELECT try_pull(:t_mid) AS before_update;

-- privileges set on functions the update creates again are kept
CREATE ROLE regress_upgrade_app NOLOGIN;
REVOKE EXECUTE ON FUNCTION sync_pull(bigint, integer, jsonb, text), sync_push(json, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sync_pull(bigint, integer, jsonb, text), sync_push(json, bigint, text) TO regress_upgrade_app;
GRANT EXECUTE ON FUNCTION sync_prune(interval) TO regress_upgrade_app;

ALTER EXTENSION pg_sync UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'pg_sync';
-- the update records the WAL timeline checkpoint ids are handed out on
SELECT s.timeline = c.timeline_id AS timeline_recorded FROM _pg_sync.state s, pg_control_checkpoint() c;
SELECT p.proname, has_function_privilege('regress_upgrade_app', p.oid, 'EXECUTE') AS app,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public
  FROM pg_proc p WHERE p.proname IN ('sync_pull', 'sync_push', 'sync_prune', 'sync_checkpoint')
 ORDER BY 1;

-- tokens issued before the update still work: what changed since them, also
-- before the update; the conflict test still knows what they had seen
INSERT INTO items VALUES ('d', 'u1', 'after the update');
SELECT try_pull(:t_mid) AS since_token_issued_by_0_1;
SELECT sync_push('{"items": {"updated": [{"id": "b", "v": "stale edit"}]}}', :t_mid, user_id => 'u1');
SELECT (sync_pull(:t_mid, user_id => 'u1')::jsonb->>'timestamp')::bigint AS t_new \gset
SELECT sync_push('{"items": {"updated": [{"id": "b", "v": "pushed after the update"}]}}',
                 :t_new, user_id => 'u1') AS push_after_pulling;
SELECT id, v FROM items ORDER BY id;
-- a token 0.1 pruned is expired (SY002), not unknown; garbage is unknown
SELECT (SELECT count(*) FROM _pg_sync.checkpoints WHERE id = :t_old) AS old_token_kept,
       try_pull(:t_old) AS pruned_token, try_pull(1) AS garbage_token;
SELECT * FROM sync_prune(interval '1 day');

-- the updated extension equals a fresh install: member objects, columns of
-- the internal tables, indexes, function definitions
CREATE FUNCTION fingerprint() RETURNS TABLE (kind text, name text, detail text) LANGUAGE sql AS $$
    SELECT 'member', pg_describe_object(classid, objid, objsubid), ''
      FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
       AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_sync')
    UNION ALL
    SELECT 'column', c.relname || '.' || a.attname,
           format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
     WHERE c.relnamespace = '_pg_sync'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = '_pg_sync'
    UNION ALL
    SELECT 'table options', c.relname, coalesce(array_to_string(c.reloptions, ','), '')
      FROM pg_class c WHERE c.relnamespace = '_pg_sync'::regnamespace AND c.relkind = 'r'
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, pg_get_functiondef(p.oid)
      FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
     WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_sync')
$$;
CREATE TEMP TABLE after_update AS SELECT * FROM fingerprint();
SELECT count(*) > 20 AS fingerprinted FROM after_update;
DROP EXTENSION pg_sync CASCADE;
CREATE EXTENSION pg_sync;
SELECT 'only after the update' AS side, kind, name FROM (SELECT * FROM after_update EXCEPT SELECT * FROM fingerprint()) a
UNION ALL
SELECT 'only in a fresh install', kind, name FROM (SELECT * FROM fingerprint() EXCEPT SELECT * FROM after_update) f
ORDER BY 1, 2, 3;
\c :regress_db
DROP DATABASE regress_pg_sync_upgrade;
DROP ROLE regress_upgrade_app;
