-- Scenario C after the crash (psql variables k1 k2 k3 k4 n ctl from
-- c_run.sql). Prints "name value" lines.
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
\pset fieldsep ' '
\ir ../sqlstate_of.sql
-- the ids of the notes of c1 a pull with token t sends
CREATE FUNCTION c_pulled(t bigint) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(e ->> 'id', ',' ORDER BY e ->> 'id'), '-')
      FROM jsonb_array_elements((SELECT (r -> 'changes' -> 'notes' -> 'created') || (r -> 'changes' -> 'notes' -> 'updated')
                                   FROM (SELECT sync_pull(t, user_id => 'c1')::jsonb AS r) x)) e
$$;

-- the case is real: a sequence whose WAL a commit did not wait for hands
-- out the same value again
SELECT 'control value handed out again', nextval('c_control') = :ctl;
-- what the crash lost, and what it kept
SELECT 'lost checkpoint rows', count(*) FROM _pg_sync.checkpoints WHERE id = :n;
SELECT 'kept checkpoint rows', count(*) FROM _pg_sync.checkpoints WHERE id IN (:k1, :k2, :k3, :k4);
SELECT 'notes of c1', string_agg(id, ',' ORDER BY id) FROM notes WHERE owner_id = 'c1';
-- n's id is not handed out again: the sequence stands at or above it
SELECT 'sequence at or above n', last_value >= :n FROM _pg_sync.checkpoint_id;
-- n names no checkpoint: refused as never issued, by a pull and a push
SELECT 'n pull', sqlstate_of(format('SELECT sync_pull(%s, user_id => %L)', :n, 'c1'));
SELECT 'n push', sqlstate_of(format('SELECT sync_push(%L::json, %s, user_id => %L)',
                                  '{"notes": {"created": [], "updated": [], "deleted": []}}', :n, 'c1'));
-- the kept tokens answer exactly what committed after them
SELECT 'k1 pulls', c_pulled(:k1);
SELECT 'k4 pulls', c_pulled(:k4);
-- a new checkpoint's id is above n
SELECT 'new id above n', (sync_pull(:k4, user_id => 'c1')::jsonb ->> 'timestamp')::bigint > :n;
