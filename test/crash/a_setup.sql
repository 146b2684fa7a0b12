-- Scenario A (kill -9 of a backend in the middle of a 10,000-record push),
-- before the push: seed rows, two clients pull (client 101 keeps its token
-- as T0), then SQL writes commit after T0. Their ids are what a pull from T0
-- must return after the crash, exactly (a_expected).
INSERT INTO notes SELECT 'a-' || g, 'u1', 'seed', 0 FROM generate_series(1, 1000) g;
INSERT INTO notes SELECT 'a2-' || g, 'u2', 'seed', 0 FROM generate_series(1, 200) g;
INSERT INTO tags SELECT 'tag-' || g, 'seed', 0 FROM generate_series(1, 100) g;

INSERT INTO clients (client, user_id) VALUES (101, 'u1'), (102, 'u2');
SELECT crash_pull(101) IS NOT NULL AS pulled;
SELECT crash_pull(102) IS NOT NULL AS pulled;
INSERT INTO saved SELECT 'T0', token FROM clients WHERE client = 101;

-- committed SQL writes after T0, in several transactions
UPDATE notes SET body = 'sql', n = n + 1 WHERE id IN (SELECT 'a-' || g FROM generate_series(1, 10) g);
DELETE FROM notes WHERE id IN (SELECT 'a-' || g FROM generate_series(11, 15) g);
INSERT INTO notes SELECT 'a-sql-' || g, 'u1', 'sql', g FROM generate_series(1, 5) g;
UPDATE notes SET owner_id = 'u2' WHERE id = 'a-16';            -- leaves u1's scope
UPDATE notes SET body = 'sql' WHERE id = 'a2-1';               -- u2's: not in u1's pull
UPDATE tags SET name = 'sql', n = 1 WHERE id IN ('tag-1', 'tag-2', 'tag-3');
DELETE FROM tags WHERE id = 'tag-4';
INSERT INTO tags VALUES ('tag-sql-1', 'sql', 1);

CREATE TABLE a_expected (tbl text, kind text, id text);
INSERT INTO a_expected
SELECT 'notes', 'updated', 'a-' || g FROM generate_series(1, 10) g
UNION ALL SELECT 'notes', 'updated', 'a-sql-' || g FROM generate_series(1, 5) g
UNION ALL SELECT 'notes', 'deleted', 'a-' || g FROM generate_series(11, 16) g
UNION ALL SELECT 'tags', 'updated', 'tag-' || g FROM generate_series(1, 3) g
UNION ALL SELECT 'tags', 'updated', 'tag-sql-1'
UNION ALL SELECT 'tags', 'deleted', 'tag-4'
-- committed by run.sh while the push is blocked, before the kill
UNION ALL SELECT 'notes', 'updated', 'a-late';

-- The push: 9,400 notes created, 500 of client 101's notes updated, 100
-- tags created: 10,000 records.
CREATE FUNCTION a_push_doc() RETURNS json LANGUAGE sql AS $$
    SELECT json_build_object(
        'notes', json_build_object(
            'created', (SELECT json_agg(json_build_object('id', 'p-' || lpad(g::text, 5, '0'), 'body', 'pushed', 'n', g) ORDER BY g)
                          FROM generate_series(1, 9400) g),
            'updated', (SELECT json_agg(json_build_object('id', 'a-' || g, 'body', 'pushed', 'n', -g) ORDER BY g)
                          FROM generate_series(101, 600) g),
            'deleted', '[]'::json),
        'tags', json_build_object(
            'created', (SELECT json_agg(json_build_object('id', 'ptag-' || g, 'name', 'pushed', 'n', g) ORDER BY g)
                          FROM generate_series(1, 100) g),
            'updated', '[]'::json,
            'deleted', '[]'::json))
$$;

-- Holds the push in the middle of its writes: every row it writes counts in
-- push_progress (a sequence, so the count is visible while the push runs),
-- and the row p-04700 waits for advisory lock 4242, which a control session
-- holds.
CREATE SEQUENCE push_progress;
CREATE FUNCTION hold_push() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body = 'pushed' THEN
        PERFORM pg_catalog.nextval('public.push_progress');
        IF NEW.id = 'p-04700' THEN
            PERFORM pg_catalog.pg_advisory_xact_lock(4242);
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER hold_push BEFORE INSERT OR UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION hold_push();
