-- An incremental pull reads a user's changed rows by key (the ones whose
-- change record is not a tombstone): up to 16 with a plan made once (one primary-key lookup each), more with a plan made for
-- the call's keys (which may read the user's rows in one range of an owner
-- index). Both must send exactly the same: the changed rows the caller may
-- read, as they are now; a row moved to another user, deleted, or hidden by
-- row-level security as deleted; no row of another user.
SET client_min_messages = warning;
CREATE TABLE pk_notes (id text PRIMARY KEY, owner text NOT NULL, title text, n int);
CREATE INDEX ON pk_notes (owner);
INSERT INTO pk_notes
SELECT 'u1-' || lpad(g::text, 3, '0'), 'u1', 'note ' || g, 0 FROM generate_series(1, 60) g;
INSERT INTO pk_notes
SELECT 'u2-' || lpad(g::text, 3, '0'), 'u2', 'note ' || g, 0 FROM generate_series(1, 60) g;
SELECT sync_register_table('pk_notes', 'owner');
CREATE ROLE regress_pk_app;
GRANT SELECT ON pk_notes TO regress_pk_app;
GRANT EXECUTE ON FUNCTION sync_pull(bigint, integer, jsonb, text, text, integer, boolean) TO regress_pk_app;
ALTER TABLE pk_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY pk_visible ON pk_notes FOR SELECT TO regress_pk_app USING (title <> 'hidden');

-- pulls of u1 as the application role; returns the ids sent as updated and
-- as deleted
CREATE FUNCTION pk_pull(tok bigint) RETURNS TABLE (updated text, deleted text, token bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    j jsonb;
BEGIN
    PERFORM set_config('request.jwt.claims', '{"sub": "u1"}', true);
    SET LOCAL ROLE regress_pk_app;
    j := sync_pull(tok)::jsonb;
    RESET ROLE;
    RETURN QUERY SELECT
        (SELECT string_agg(r->>'id' || '=' || (r->>'n'), ' ' ORDER BY r->>'id')
           FROM jsonb_array_elements(j->'changes'->'pk_notes'->'updated') r),
        (SELECT string_agg(d, ' ' ORDER BY d)
           FROM jsonb_array_elements_text(j->'changes'->'pk_notes'->'deleted') d),
        (j->>'timestamp')::bigint;
END
$$;

SELECT token AS t0 FROM pk_pull(NULL) \gset
-- 16 changed rows of u1, 14 of them read by key (the plan made once): 12
-- updated, one hidden by the policy, one changed and changed back by another
-- statement; one moved to u2 and one deleted (tombstones); and rows of u2
-- changed too
UPDATE pk_notes SET n = n + 1 WHERE owner = 'u1' AND id <= 'u1-016';
UPDATE pk_notes SET owner = 'u2' WHERE id = 'u1-013';
DELETE FROM pk_notes WHERE id = 'u1-014';
UPDATE pk_notes SET title = 'hidden' WHERE id = 'u1-015';
UPDATE pk_notes SET n = 0 WHERE id = 'u1-016';
UPDATE pk_notes SET n = n + 5 WHERE owner = 'u2';
SELECT sync_checkpoint() IS NOT NULL AS checkpoint;
SELECT updated, deleted FROM pk_pull(:t0);
SELECT token AS t1 FROM pk_pull(:t0) \gset

-- 20 changed rows, 18 of them read by key (the plan made for the call): the
-- same kinds of change
UPDATE pk_notes SET n = n + 1 WHERE owner = 'u1' AND id BETWEEN 'u1-020' AND 'u1-039';
UPDATE pk_notes SET owner = 'u2' WHERE id = 'u1-037';
DELETE FROM pk_notes WHERE id = 'u1-038';
UPDATE pk_notes SET title = 'hidden' WHERE id = 'u1-039';
UPDATE pk_notes SET n = 0 WHERE id = 'u1-036';
UPDATE pk_notes SET n = n + 5 WHERE owner = 'u2';
SELECT sync_checkpoint() IS NOT NULL AS checkpoint;
SELECT updated, deleted FROM pk_pull(:t1);
SELECT token AS t2 FROM pk_pull(:t1) \gset

-- what both answers must be: u1's changed rows the role may read, by a query
SELECT string_agg(id || '=' || n, ' ' ORDER BY id) AS expected_updated
  FROM pk_notes
 WHERE owner = 'u1' AND title <> 'hidden' AND (id <= 'u1-016' OR id BETWEEN 'u1-020' AND 'u1-039');

-- without the primary key on the key column, a few keys are read with the
-- plan made for the call (a plan made once could not look them up by key)
ALTER TABLE pk_notes DROP CONSTRAINT pk_notes_pkey;
CREATE UNIQUE INDEX pk_notes_id ON pk_notes (id);
UPDATE pk_notes SET n = n + 1 WHERE id IN ('u1-050', 'u1-051');
SELECT sync_checkpoint() IS NOT NULL AS checkpoint;
SELECT updated, deleted FROM pk_pull(:t2);

DROP POLICY pk_visible ON pk_notes;
SELECT sync_unregister_table('pk_notes');
DROP TABLE pk_notes;
DROP FUNCTION pk_pull(bigint);
REVOKE ALL ON FUNCTION sync_pull(bigint, integer, jsonb, text, text, integer, boolean) FROM regress_pk_app;
DROP ROLE regress_pk_app;
