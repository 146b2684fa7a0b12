-- Scenario C before the crash: lazy checkpoints. One session; the WAL writer
-- is stopped (SIGSTOP), autovacuum and the background writer's writes are
-- off, so WAL reaches the disk only when a commit waits for it (or a
-- CHECKPOINT, or sync_token_next_id's flush). After each commit,
-- pg_current_wal_flush_lsn() against the insert position read just before
-- COMMIT says whether the commit waited. Prints "name value" lines: no
-- output table, as writing one would flush the WAL.
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
\pset fieldsep ' '
CREATE SEQUENCE c_control;
CREATE TABLE c_log (what text);
-- warms this session's caches: a catalog lookup after a pull may prune a
-- catalog page, which writes WAL (and makes the commit wait)
SELECT 'warm', pg_current_wal_insert_lsn() IS NOT NULL AND pg_current_wal_flush_lsn() IS NOT NULL
           AND sync_pull(NULL, user_id => 'c0') IS NOT NULL;

-- k1: a pull in a transaction of its own: lazy
INSERT INTO notes VALUES ('c-1', 'c1', 'one', 1);
BEGIN;
SELECT (sync_pull(NULL, user_id => 'c1')::jsonb ->> 'timestamp') AS k1 \gset
SELECT pg_current_wal_insert_lsn() AS l \gset
COMMIT;
SELECT 'k1 waited', pg_current_wal_flush_lsn() >= :'l';

-- k2: the same with pg_sync.durable_checkpoints on
INSERT INTO notes VALUES ('c-2', 'c1', 'two', 2);
SET pg_sync.durable_checkpoints = on;
BEGIN;
SELECT (sync_pull(:k1, user_id => 'c1')::jsonb ->> 'timestamp') AS k2 \gset
SELECT pg_current_wal_insert_lsn() AS l \gset
COMMIT;
RESET pg_sync.durable_checkpoints;
SELECT 'k2 waited', pg_current_wal_flush_lsn() >= :'l';

-- k3: a transaction that wrote (a table not synced), then pulled
INSERT INTO notes VALUES ('c-3', 'c1', 'three', 3);
BEGIN;
INSERT INTO c_log VALUES ('k3');
SELECT (sync_pull(:k2, user_id => 'c1')::jsonb ->> 'timestamp') AS k3 \gset
SELECT pg_current_wal_insert_lsn() AS l \gset
COMMIT;
SELECT 'k3 waited', pg_current_wal_flush_lsn() >= :'l';

-- k4: a transaction that pulled, then wrote a row
INSERT INTO notes VALUES ('c-4', 'c1', 'four', 4);
BEGIN;
SELECT (sync_pull(:k3, user_id => 'c1')::jsonb ->> 'timestamp') AS k4 \gset
INSERT INTO notes VALUES ('c-5', 'c1', 'five', 5);
SELECT pg_current_wal_insert_lsn() AS l \gset
COMMIT;
SELECT 'k4 waited', pg_current_wal_flush_lsn() >= :'l';

-- n: lazy, and the last thing before the crash. After a CHECKPOINT the next
-- nextval() of the checkpoint ids WAL-logs the sequence's position; that
-- record is flushed, the commit is not.
INSERT INTO notes VALUES ('c-6', 'c1', 'six', 6);
CHECKPOINT;
BEGIN;
SELECT (sync_pull(:k4, user_id => 'c1')::jsonb ->> 'timestamp') AS n \gset
SELECT pg_current_wal_insert_lsn() AS l \gset
COMMIT;
SELECT 'n waited', pg_current_wal_flush_lsn() >= :'l';

-- the control: a sequence of its own, first moved since the CHECKPOINT in a
-- transaction that does not wait for its commit
BEGIN;
SET LOCAL synchronous_commit = off;
SELECT nextval('c_control') AS ctl \gset
COMMIT;

SELECT 'distinct tokens', count(DISTINCT t) FROM (VALUES (:k1), (:k2), (:k3), (:k4), (:n)) v(t);
\echo token_k1 :k1
\echo token_k2 :k2
\echo token_k3 :k3
\echo token_k4 :k4
\echo token_n :n
\echo token_ctl :ctl
