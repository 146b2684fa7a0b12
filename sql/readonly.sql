\set SHOW_CONTEXT never
-- sync_pull inside a read-only transaction (hot standbys, PostgREST GET)
-- tokens go in a temporary table, which a read-only transaction may write
-- (writing it gives the transaction an xid: one pull per transaction here)
CREATE TEMP TABLE tok (client text PRIMARY KEY, t bigint NOT NULL);
CREATE TABLE cards (id text PRIMARY KEY, word text);
SELECT sync_register_table('cards');
INSERT INTO cards VALUES ('c1', 'one');
SELECT pull();

BEGIN READ ONLY;
SELECT pull();
COMMIT;

-- a change committed after the newest checkpoint: a read-only pull cannot
-- record a new checkpoint, so it answers up to the newest one and the change
-- waits for the next checkpoint instead of being skipped
INSERT INTO cards VALUES ('c2', 'two');
SELECT token() AS before \gset
BEGIN READ ONLY;
SELECT pull() AS read_only_pull;
SELECT token() = :before AS same_token;
COMMIT;
SELECT sync_checkpoint() > 0 AS checkpoint_recorded;
BEGIN READ ONLY;
SELECT pull();
COMMIT;
BEGIN READ ONLY;
SELECT pull();
COMMIT;

-- a read-only first pull answering up to an older checkpoint leaves out the
-- rows written after it; they come with the next pull, not twice
INSERT INTO cards VALUES ('c3', 'three');
UPDATE cards SET word = 'ONE' WHERE id = 'c1';
BEGIN READ ONLY;
SELECT pull('ro');
COMMIT;
SELECT sync_checkpoint() > 0 AS checkpoint_recorded;
BEGIN READ ONLY;
SELECT pull('ro');
COMMIT;
BEGIN READ ONLY;
SELECT pull('ro');
COMMIT;
SELECT pull();

-- sync_checkpoint itself needs a writable transaction
BEGIN READ ONLY;
SELECT sync_checkpoint();
ROLLBACK;

SELECT sync_unregister_table('cards');
DROP TABLE cards;
