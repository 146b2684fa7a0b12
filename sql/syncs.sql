\set SHOW_CONTEXT never
TRUNCATE tok;
-- Big and long-offline syncs: pages, replacement, no echo, migrations by
-- column, Turbo-valid first pulls, realtime hints.

-- a pull's records as "table:id" (updated) and "table:-id" (deleted), sorted
CREATE FUNCTION recs(r jsonb) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM (
        SELECT t.key || ':' || (e->>'id') AS x
          FROM jsonb_each(r->'changes') t, jsonb_array_elements(t.value->'updated') e
        UNION ALL
        SELECT t.key || ':-' || (e #>> '{}')
          FROM jsonb_each(r->'changes') t, jsonb_array_elements(t.value->'deleted') e) s
$$;
-- pulls every page of a paged pull from a token, as one client: the pages'
-- records (an id twice across pages raises), their count, and the last token;
-- page tokens must increase
CREATE TABLE paged (client text PRIMARY KEY, pages int, records text[], last bigint);
CREATE FUNCTION pull_pages(who text, from_token bigint, size int) RETURNS paged LANGUAGE plpgsql AS $$
DECLARE
    t bigint := from_token;
    r jsonb;
    all_recs text[] := '{}';
    n int := 0;
    dup text;
BEGIN
    LOOP
        r := sync_pull(t, page_size => size)::jsonb;
        IF (r->>'timestamp')::bigint <= coalesce(t, 0) THEN
            RAISE EXCEPTION 'page token went back: % after %', r->>'timestamp', t;
        END IF;
        IF n = 0 AND from_token IS NULL THEN
            PERFORM turbo_check(r - 'hasMore');
        END IF;
        IF jsonb_array_length(coalesce((SELECT jsonb_agg(x) FROM unnest(recs(r)) x), '[]')) > size THEN
            RAISE EXCEPTION 'page of % records, page_size %', cardinality(recs(r)), size;
        END IF;
        all_recs := all_recs || recs(r);
        n := n + 1;
        t := (r->>'timestamp')::bigint;
        EXIT WHEN NOT coalesce((r->>'hasMore')::boolean, false);
    END LOOP;
    SELECT x INTO dup FROM unnest(all_recs) x GROUP BY x HAVING count(*) > 1 LIMIT 1;
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'record % sent twice', dup;
    END IF;
    INSERT INTO paged VALUES (who, n, (SELECT array_agg(x ORDER BY x) FROM unnest(all_recs) x), t)
        ON CONFLICT (client) DO UPDATE SET pages = excluded.pages, records = excluded.records, last = excluded.last;
    RETURN (SELECT p FROM paged p WHERE p.client = who);
END
$$;

------------------------------------------------------------------------------
-- the Turbo check itself refuses what Turbo Login would
SELECT err($$SELECT turbo_check('{"changes": {"t": {"created": [], "updated": [], "deleted": ["x"]}}, "timestamp": 1}')$$);
SELECT err($$SELECT turbo_check('{"changes": {"t": {"updated": [{"id": 1}]}}, "timestamp": 1}')$$);
SELECT err($$SELECT turbo_check('{"changes": {"t": {"updated": [{"id": "a"}, {"id": "a"}]}}, "timestamp": 1}')$$);
SELECT err($$SELECT turbo_check('{"changes": {"t": {"updated": [{"id": "a", "v": {"x": 1}}]}}, "timestamp": 1}')$$);
SELECT err($$SELECT turbo_check('{"changes": {"t": {"updated": [], "hasMore": true}}, "timestamp": 1}')$$);
SELECT err($$SELECT turbo_check('{"changes": {"t": {"updated": [{"id": "a", "_status": "synced"}]}}, "timestamp": 1}')$$);

------------------------------------------------------------------------------
-- pages
CREATE TABLE p_items (id text PRIMARY KEY, owner text, n int);
CREATE TABLE p_shared (id int PRIMARY KEY, label text);
SELECT sync_register_table('p_items', 'owner');
SELECT sync_register_table('p_shared');
INSERT INTO p_items SELECT 'i' || lpad(g::text, 3, '0'), CASE WHEN g % 3 = 0 THEN 'bob' ELSE 'ann' END, g
  FROM generate_series(1, 60) g;
INSERT INTO p_shared SELECT g, 'label ' || g FROM generate_series(1, 25) g;
SELECT set_config('request.jwt.claims', '{"sub": "ann"}', false);
SELECT err('SELECT sync_pull(page_size => 0)');
SELECT err('SELECT sync_pull(page_size => 1000001)');
-- a first pull in pages of 7: the same records as one unpaged pull, each once
SELECT recs(sync_pull()::jsonb) AS unpaged \gset
SELECT pages, records = :'unpaged'::text[] AS same_as_unpaged, cardinality(records) AS n
  FROM pull_pages('ann', NULL, 7);
-- an answer that fits in a page is not paged
SELECT (sync_pull(page_size => 100)::jsonb) ? 'hasMore' AS has_more;
-- incremental: 30 changes (updates, deletes, an owner change) in pages of 4
SELECT last AS t0 FROM paged WHERE client = 'ann' \gset
UPDATE p_items SET n = n + 100 WHERE n % 2 = 0 AND owner = 'ann';
DELETE FROM p_items WHERE id IN ('i001', 'i005');
UPDATE p_items SET owner = 'bob' WHERE id = 'i007';
UPDATE p_shared SET label = label || '!' WHERE id <= 5;
SELECT recs(sync_pull(:t0)::jsonb) AS unpaged \gset
SELECT pages, records = :'unpaged'::text[] AS same_as_unpaged, cardinality(records) AS n
  FROM pull_pages('ann', :t0, 4);
-- a paged pull that was not needed: within one page, the usual answer
SELECT last AS t1 FROM paged WHERE client = 'ann' \gset
UPDATE p_items SET n = -1 WHERE id = 'i002';
SELECT recs(r), r ? 'hasMore' AS has_more FROM (SELECT sync_pull(:t1, page_size => 4)::jsonb AS r) s;

-- writers commit between pages: a row changed after the pull began is not in
-- its pages (no id twice) but in the next pull, in its newest state
SELECT (sync_pull(:t1)::jsonb ->> 'timestamp')::bigint AS t2 \gset
UPDATE p_items SET n = n + 1000 WHERE owner = 'ann';
SELECT sync_pull(:t2, page_size => 5)::jsonb AS page1 \gset
SELECT (:'page1'::jsonb ->> 'hasMore')::boolean AS has_more, cardinality(recs(:'page1')) AS n;
-- meanwhile: a row of the first page and one further on change, one is
-- inserted far on, one further on is deleted
UPDATE p_items SET n = 7 WHERE id = (SELECT min(x) FROM unnest(recs(:'page1')) x WHERE x LIKE 'p_items:i%');
UPDATE p_items SET n = 8 WHERE id = 'i040';
INSERT INTO p_items VALUES ('i999', 'ann', 999);
DELETE FROM p_items WHERE id = 'i050';
SELECT pages, 'p_items:i040' = ANY (records) AS i040_in_pages, 'p_items:i999' = ANY (records) AS new_row_in_pages,
       'p_items:i050' = ANY (records) OR 'p_items:-i050' = ANY (records) AS deleted_row_in_pages
  FROM pull_pages('ann-mid', (:'page1'::jsonb ->> 'timestamp')::bigint, 5);
-- the next pull from the last page's token has what changed while paging
SELECT last AS t3 FROM paged WHERE client = 'ann-mid' \gset
SELECT recs(sync_pull(:t3)::jsonb) AS next_pull;
-- the first page and the others share no record, and together hold every
-- row of ann's that did not change while paging
SELECT NOT (recs(:'page1') && records) AS no_overlap,
       (SELECT array_agg('p_items:' || id ORDER BY id) FROM p_items WHERE owner = 'ann' AND n > 1000)
         <@ (recs(:'page1') || records) AS unchanged_rows_in_pages
  FROM paged WHERE client = 'ann-mid';

-- the same page token asked again: the same page and the same token
SELECT (sync_pull(:t2, page_size => 5)::jsonb ->> 'timestamp')::bigint AS p1 \gset
SELECT sync_pull(:p1)::jsonb AS first_time \gset
SELECT sync_pull(:p1)::jsonb AS second_time \gset
SELECT :'first_time'::jsonb = :'second_time'::jsonb AS same_answer;
-- (page_size comes from the pull: a page token takes none)
SELECT (sync_pull(:p1, page_size => 1)::jsonb ->> 'timestamp') = :'first_time'::jsonb ->> 'timestamp' AS same_token;
-- another user cannot go on with it
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', false);
SELECT err(format('SELECT sync_pull(%s)', :p1));
SELECT set_config('request.jwt.claims', '{"sub": "ann"}', false);
-- a push with a page token counts as made with the pull's token: a row the
-- pages already sent but changed after that token is a conflict
SELECT err(format($q$SELECT sync_push('{"p_items": {"updated": [{"id": "i004", "n": 4}]}}', %s)$q$, :p1));
-- a first pull's page token: every existing row is a conflict, new ones are fine
SELECT (sync_pull(page_size => 5)::jsonb ->> 'timestamp')::bigint AS fp \gset
SELECT err(format($q$SELECT sync_push('{"p_items": {"updated": [{"id": "i004", "n": 4}]}}', %s)$q$, :fp));
SELECT sync_push(format('{"p_items": {"created": [{"id": "new-%s", "n": 1}]}}', 1)::json, :fp);
-- read-only (a standby): a pull that fits in a page is answered; a longer
-- one, and every later page, must go to the primary (SY004)
BEGIN TRANSACTION READ ONLY;
SELECT (sync_pull(:t3, page_size => 100)::jsonb ? 'hasMore') AS has_more;
SELECT err('SELECT sync_pull(page_size => 5)');
COMMIT;
BEGIN TRANSACTION READ ONLY;
SELECT err(format('SELECT sync_pull(%s)', :p1));
COMMIT;
-- pruned: a page token expires like a checkpoint (SY002, never SY003)
SELECT (sync_pull(page_size => 5)::jsonb ->> 'timestamp')::bigint AS old_page \gset
UPDATE _pg_sync.pages SET created_at = created_at - interval '40 days' WHERE id = :old_page;
SELECT checkpoints > 0 AS pruned_some FROM sync_prune('30 days');
SELECT err(format('SELECT sync_pull(%s)', :old_page));

------------------------------------------------------------------------------
-- replacement instead of reset
SELECT (sync_pull()::jsonb ->> 'timestamp')::bigint AS t_old \gset
INSERT INTO p_items VALUES ('r1', 'ann', 1);
DELETE FROM p_items WHERE id = 'i004';
SELECT sync_checkpoint() > :t_old AS newer_checkpoint;
UPDATE _pg_sync.checkpoints SET created_at = created_at - interval '40 days' WHERE id = :t_old;
SELECT checkpoints > 0 AS pruned_some FROM sync_prune('30 days');
SELECT err(format('SELECT sync_pull(%s)', :t_old));
SELECT r ->> 'experimentalStrategy' AS strategy, r ? 'hasMore' AS paged,
       recs(r) = recs(sync_pull()::jsonb) AS everything_as_a_first_pull,
       NOT ('p_items:i004' = ANY (recs(r)) OR 'p_items:-i004' = ANY (recs(r))) AS i004_absent
  FROM (SELECT sync_pull(:t_old, replacement_ok => true, page_size => 5)::jsonb AS r) s;
-- a table whose replacement the owner requires: that table only, by replacement
SELECT (sync_pull()::jsonb ->> 'timestamp')::bigint AS t_r \gset
SELECT sync_require_replacement('p_shared');
SELECT r -> 'experimentalStrategy' AS strategy, jsonb_array_length(r #> '{changes,p_shared,updated}') AS shared_rows,
       jsonb_array_length(r #> '{changes,p_items,updated}') AS item_rows
  FROM (SELECT sync_pull(:t_r, replacement_ok => true)::jsonb AS r) s;
-- without replacement_ok: the table whole, no strategy
SELECT r ? 'experimentalStrategy' AS has_strategy, jsonb_array_length(r #> '{changes,p_shared,updated}') AS shared_rows
  FROM (SELECT sync_pull(:t_r)::jsonb AS r) s;
-- once pulled since, nothing is replaced
SELECT (sync_pull(:t_r)::jsonb ->> 'timestamp')::bigint AS t_r2 \gset
SELECT sync_pull(:t_r2, replacement_ok => true)::jsonb ? 'experimentalStrategy' AS has_strategy;
SELECT err($$SELECT sync_require_replacement('tok')$$);
-- a table the caller may no longer read: replaced by nothing (with
-- replacement_ok; without, the pull fails as before)
CREATE ROLE regress_syncs_reader NOLOGIN;
GRANT SELECT ON p_items, tok TO regress_syncs_reader;
SET ROLE regress_syncs_reader;
SELECT r -> 'experimentalStrategy' AS strategy, r #> '{changes,p_shared}' AS shared,
       jsonb_array_length(r #> '{changes,p_items,updated}') > 0 AS items_sent
  FROM (SELECT sync_pull(:t_r2, replacement_ok => true)::jsonb AS r) s;
SELECT err(format('SELECT sync_pull(%s)', :t_r2));
RESET ROLE;
REVOKE ALL ON p_items, tok FROM regress_syncs_reader;
DROP ROLE regress_syncs_reader;

------------------------------------------------------------------------------
-- no echo: a device is not sent the rows it pushed while they are as it pushed them
CREATE TABLE e_notes (
    id text PRIMARY KEY,
    owner text,
    body text,
    n int,
    stamp timestamptz(0),
    body_len int GENERATED ALWAYS AS (length(body)) STORED,
    touched int DEFAULT 0
) WITH (autovacuum_enabled = false);  -- (see devices.sql: no ANALYZE between statements)
CREATE FUNCTION e_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body = 'touch me' THEN NEW.touched := NEW.touched + 1; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER e_touch BEFORE INSERT OR UPDATE ON e_notes FOR EACH ROW EXECUTE FUNCTION e_touch();
SELECT sync_register_table('e_notes', 'owner');
SELECT (sync_pull(client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS e0 \gset
SELECT sync_push($${"e_notes": {"created": [
    {"id": "e1", "body": "plain", "n": 1, "stamp": 1767268800000, "touched": 0},
    {"id": "e2", "body": "touch me", "n": 2, "stamp": 1767268800000, "touched": 0},
    {"id": "e3", "body": "rounded", "n": 3, "stamp": 1767268800123, "touched": 0},
    {"id": "e4", "body": "no default sent", "n": 4, "stamp": 1767268800000},
    {"id": "e5", "body": "generated sent", "n": 5, "stamp": 1767268800000, "body_len": 99, "touched": 0},
    {"id": "e6", "body": "changed after", "n": 6, "stamp": 1767268800000, "touched": 0}]}}$$, :e0,
    client_id => 'phone');
UPDATE e_notes SET n = 60 WHERE id = 'e6';
-- the phone gets back what the table made of its records, and what changed
-- after; not e1 and e4 (stored as pushed, over the columns it sent)
SELECT recs(sync_pull(:e0, client_id => 'phone')::jsonb) AS phone_gets;
-- another device of ann, and a pull naming no device, get every row
SELECT cardinality(recs(sync_pull(:e0, client_id => 'tablet')::jsonb)) AS tablet_gets,
       cardinality(recs(sync_pull(:e0)::jsonb)) AS unnamed_gets;
-- another user's device of the same name is another device (a shared table)
SELECT (sync_pull(client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS a0 \gset
SELECT set_config('request.jwt.claims', '{"sub": "bob"}', false);
SELECT (sync_pull(client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS b0 \gset
SELECT sync_push('{"p_shared": {"created": [{"id": "100", "label": "from bob''s phone"}]}}', :b0, client_id => 'phone');
SELECT recs(sync_pull(:b0, client_id => 'phone')::jsonb) AS bobs_phone_gets;
SELECT set_config('request.jwt.claims', '{"sub": "ann"}', false);
SELECT recs(sync_pull(:a0, client_id => 'phone')::jsonb) AS anns_phone_gets;
-- an edit pushed by the phone, then the same row written by SQL with the
-- same values: the phone still has it (nothing to send)
SELECT (sync_pull(:e0, client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS e1 \gset
SELECT sync_push('{"e_notes": {"updated": [{"id": "e1", "body": "plain, edited", "n": 1, "stamp": 1767268800000, "touched": 0}]}}',
                 :e1, client_id => 'phone');
UPDATE e_notes SET n = n WHERE id = 'e1';
SELECT recs(sync_pull(:e1, client_id => 'phone')::jsonb) AS phone_gets;
-- a second edit by SQL: sent
UPDATE e_notes SET body = 'plain, edited by the server' WHERE id = 'e1';
SELECT recs(sync_pull(:e1, client_id => 'phone')::jsonb) AS phone_gets;
-- a record the policy did not take: the server's row is sent
SELECT sync_alter_table('e_notes', 'server_wins');
SELECT (sync_pull(:e1, client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS e2 \gset
UPDATE e_notes SET body = 'server' WHERE id = 'e1';
SELECT sync_push('{"e_notes": {"updated": [{"id": "e1", "body": "phone", "n": 1, "stamp": 1767268800000, "touched": 0}]}}',
                 :e2, client_id => 'phone');
SELECT recs(sync_pull(:e2, client_id => 'phone')::jsonb) AS phone_gets;
-- an idle device whose changes were all its own moves on (a new token) and
-- then writes nothing
SELECT (sync_pull(:e2, client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS e3 \gset
SELECT sync_push('{"e_notes": {"updated": [{"id": "e4", "body": "again", "n": 4, "stamp": 1767268800000}]}}',
                 :e3, client_id => 'phone');
SELECT r #> '{changes,e_notes,updated}' AS updated, (r ->> 'timestamp')::bigint > :e3 AS moved_on
  FROM (SELECT sync_pull(:e3, client_id => 'phone')::jsonb AS r) s;
SELECT (sync_pull(:e3, client_id => 'phone')::jsonb ->> 'timestamp')::bigint AS e4 \gset
SELECT count(*) AS checkpoints_before FROM _pg_sync.checkpoints \gset
SELECT (sync_pull(:e4, client_id => 'phone')::jsonb ->> 'timestamp')::bigint = :e4 AS same_token,
       (SELECT count(*) FROM _pg_sync.checkpoints) = :checkpoints_before AS nothing_written;
-- writes rolled back after a push leave the phone's copy as it pushed it:
-- e7 is still left out (the visible version of its record is the phone's)
SELECT sync_push('{"e_notes": {"created": [{"id": "e7", "body": "mine", "n": 7, "stamp": 1767268800000, "touched": 0}]}}',
                 :e4, client_id => 'phone');
BEGIN;
UPDATE e_notes SET n = 70 WHERE id = 'e7';
ROLLBACK;
BEGIN;
SAVEPOINT s;
DELETE FROM e_notes WHERE id = 'e7';
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT recs(sync_pull(:e4, client_id => 'phone')::jsonb) AS phone_gets,
       recs(sync_pull(:e4, client_id => 'tablet')::jsonb) AS tablet_gets;

------------------------------------------------------------------------------
-- migrations by column: the rows a new column is set in, plus the changes
SELECT (sync_pull()::jsonb ->> 'timestamp')::bigint AS m0 \gset
ALTER TABLE p_shared ADD COLUMN colour text;
UPDATE p_shared SET colour = 'red' WHERE id IN (3, 4);
DELETE FROM p_shared WHERE id = 6;
UPDATE p_shared SET label = 'renamed' WHERE id = 7;
SELECT recs(r) AS migration_pull
  FROM (SELECT sync_pull(:m0, 2, '{"from": 1, "columns": [{"table": "p_shared", "columns": ["colour", "only_in_the_app"]},
                                                          {"table": "app_only", "columns": ["x"]}]}')::jsonb AS r) s;
SELECT recs(sync_pull(:m0, 2, '{"from": 1, "tables": ["p_shared", "app_only"]}')::jsonb) @> ARRAY['p_shared:1', 'p_shared:25'] AS whole_table;
SELECT err($$SELECT sync_pull(1, 2, '[]')$$);
SELECT err($$SELECT sync_pull(1, 2, '{"tables": "p_shared"}')$$);
SELECT err($$SELECT sync_pull(1, 2, '{"tables": ["p_shared", 3]}')$$);
SELECT err($$SELECT sync_pull(1, 2, '{"columns": [{"table": "p_shared"}]}')$$);
SELECT err($$SELECT sync_pull(1, 2, '{"columns": [{"table": "p_shared", "columns": [null]}]}')$$);
SELECT err($$SELECT sync_pull(1, 2, '{"columns": ["p_shared"]}')$$);

------------------------------------------------------------------------------
-- realtime hints: which users have changes a position did not see
SELECT sync_changed_users(NULL, ARRAY['ann', 'bob', 'cid']) ->> 'users' AS none_yet;
SELECT sync_changed_users(NULL, ARRAY['ann', 'bob', 'cid']) ->> 'next' AS pos \gset
SELECT sync_changed_users(:'pos', ARRAY['ann', 'bob', 'cid']) -> 'users' AS nothing_since;
UPDATE p_items SET n = 0 WHERE id = 'i003';   -- bob's
SELECT sync_changed_users(:'pos', ARRAY['ann', 'bob', 'cid'])::jsonb - 'next' AS bob_changed;
UPDATE p_shared SET label = 'for all' WHERE id = 1;
SELECT sync_changed_users(:'pos', ARRAY['ann', 'cid'])::jsonb - 'next' AS shared_changed;
SELECT err($$SELECT sync_changed_users('garbage', '{}')$$);
CREATE ROLE regress_syncs_hint NOLOGIN;
SET ROLE regress_syncs_hint;
SELECT err($$SELECT sync_changed_users(NULL, '{}')$$);
RESET ROLE;
DROP ROLE regress_syncs_hint;

SELECT set_config('request.jwt.claims', '', false);
SELECT sync_unregister_table(t) FROM unnest(ARRAY['p_items', 'p_shared', 'e_notes']::regclass[]) t;
DROP FUNCTION recs(jsonb), pull_pages(text, bigint, int);
DROP TABLE p_items, p_shared, e_notes, paged;
DROP FUNCTION e_touch();
