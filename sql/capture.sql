-- The capture triggers write change records without SQL where they can
-- (pg_sync.direct_capture, on by default): the records must be exactly the
-- ones the SQL upsert writes. Every scenario below runs twice, on two tables
-- of the same shape: once with direct_capture on, once off, and the change
-- records of the two are compared (id, owner, tombstone, and which of the
-- scenario's transactions wrote them last).
SET client_min_messages = warning;
CREATE DOMAIN short_code AS varchar(20);
CREATE TYPE mood AS ENUM ('calm', 'busy');

CREATE FUNCTION make_tables(kind text, key_type text, owner_type text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I (id %s PRIMARY KEY, owner %s, v int)', 'cap_' || kind || '_on', key_type, owner_type);
    EXECUTE format('CREATE TABLE %I (id %s PRIMARY KEY, owner %s, v int)', 'cap_' || kind || '_off', key_type, owner_type);
    PERFORM sync_register_table(('cap_' || kind || '_on')::regclass, owner_column => 'owner');
    PERFORM sync_register_table(('cap_' || kind || '_off')::regclass, owner_column => 'owner');
END
$$;

-- runs each statement of the scenario in a transaction of its own (%s
-- stands for the table), on the _on table with direct_capture on, then on
-- the _off table with it off, noting each transaction's xid
CREATE TABLE scenario_xids (tbl text, step int, xid xid8);
CREATE PROCEDURE run_both(kind text, pull_user text, VARIADIC stmts text[])
LANGUAGE plpgsql AS $$
DECLARE
    s text;
    i int;
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['cap_' || kind || '_on', 'cap_' || kind || '_off'] LOOP
        PERFORM set_config('pg_sync.direct_capture', CASE WHEN tbl LIKE '%\_on' THEN 'on' ELSE 'off' END, false);
        -- the table's descriptor is cached from here on (direct capture needs it)
        PERFORM sync_pull(user_id => pull_user);
        COMMIT;
        i := 0;
        FOREACH s IN ARRAY stmts LOOP
            i := i + 1;
            EXECUTE replace(s, '%s', quote_ident(tbl));
            INSERT INTO scenario_xids VALUES (tbl, i, pg_current_xact_id());
            COMMIT;
        END LOOP;
    END LOOP;
    RESET pg_sync.direct_capture;
END
$$;

-- change records of a table: id, owner, tombstone, the step that wrote it
CREATE FUNCTION records(tbl text) RETURNS TABLE (id text, owner text, deleted boolean, step int)
LANGUAGE sql AS $$
    SELECT m.id, m.owner, m.deleted, x.step
      FROM _pg_sync.row_meta m
      JOIN _pg_sync.tables t ON t.table_id = m.table_id
      LEFT JOIN scenario_xids x ON x.tbl = $1 AND x.xid = m.xid
     WHERE t.relid = $1::regclass
$$;
-- the records of the _on table, and every difference from the _off table
CREATE FUNCTION compare(kind text) RETURNS TABLE (id text, owner text, deleted boolean, step int, same text)
LANGUAGE sql AS $$
    SELECT coalesce(a.id, b.id), coalesce(a.owner, b.owner), coalesce(a.deleted, b.deleted), coalesce(a.step, b.step),
           CASE WHEN a.id IS NULL THEN 'only by SQL' WHEN b.id IS NULL THEN 'only direct'
                WHEN a.deleted IS DISTINCT FROM b.deleted OR a.step IS DISTINCT FROM b.step
                THEN format('by SQL: deleted %s step %s', b.deleted, b.step) ELSE 'same' END
      FROM records('cap_' || kind || '_on') a
      FULL JOIN records('cap_' || kind || '_off') b ON a.id = b.id AND a.owner = b.owner
     ORDER BY coalesce(a.id, b.id) COLLATE "C", coalesce(a.owner, b.owner) COLLATE "C"
$$;

-- keys and owners of other types become text as ::text makes them: a
-- domain over varchar, char(n) without its padding (a cast function), inet
-- with its netmask (a cast function, not the output function), bigint,
-- uuid, an enum (each pair is dropped after its comparison: a pull checks
-- the user id against the owner type of every registered table)
SELECT make_tables('char', 'short_code', 'char(4)');
CALL run_both('char', 'x',
    $$INSERT INTO %s VALUES ('ab ', 'x', 1)$$,
    $$INSERT INTO %s VALUES ('cd', 'y  ', 1), ('ef', 'y', 1)$$,
    $$UPDATE %s SET owner = 'z' WHERE id = 'ab '$$,
    $$DELETE FROM %s WHERE id = 'cd'$$);
SELECT * FROM compare('char');
DROP TABLE cap_char_on, cap_char_off;
SELECT make_tables('num', 'bigint', 'uuid');
CALL run_both('num', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    $$INSERT INTO %s VALUES (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1)$$,
    $$INSERT INTO %s VALUES (-20, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12', 1), (9007199254740993, NULL, 1)$$,
    $$UPDATE %s SET id = 2 WHERE id = 1$$,
    $$DELETE FROM %s WHERE id = -20$$);
SELECT * FROM compare('num');
DROP TABLE cap_num_on, cap_num_off;
SELECT make_tables('inet', 'int', 'inet');
CALL run_both('inet', '10.0.0.1',
    $$INSERT INTO %s VALUES (1, '10.0.0.1', 1)$$,
    $$UPDATE %s SET owner = '10.0.0.0/8' WHERE id = 1$$);
SELECT * FROM compare('inet');
DROP TABLE cap_inet_on, cap_inet_off;
SELECT make_tables('enum', 'uuid', 'mood');
CALL run_both('enum', 'calm',
    $$INSERT INTO %s VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'calm', 1)$$,
    $$UPDATE %s SET owner = 'busy' WHERE owner = 'calm'$$);
SELECT * FROM compare('enum');
DROP TABLE cap_enum_on, cap_enum_off;

-- text keys and owners: one-row and many-row statements, owner and key
-- moves in one statement with rows that stay, delete and re-insert, NULL
-- owners
SELECT make_tables('text', 'text', 'text');
CALL run_both('text', 'u1',
    $$INSERT INTO %s VALUES ('a', 'u1', 1)$$,
    $$INSERT INTO %s VALUES ('b', 'u1', 1), ('c', 'u2', 1), ('d', NULL, 1), ('e', 'u1', 1)$$,
    $$UPDATE %s SET v = 2 WHERE id = 'a'$$,
    $$UPDATE %s SET owner = 'u2' WHERE id = 'a'$$,
    $$UPDATE %s SET id = 'a2' WHERE id = 'a'$$,
    $$UPDATE %s SET id = id || 'x' WHERE id IN ('b', 'c')$$,
    $$UPDATE %s SET owner = CASE owner WHEN 'u1' THEN 'u3' ELSE owner END, v = v + 1 WHERE id IN ('bx', 'cx', 'd')$$,
    $$UPDATE %s SET id = CASE id WHEN 'bx' THEN 'b' ELSE id END, v = v + 1 WHERE id IN ('bx', 'cx')$$,
    $$DELETE FROM %s WHERE id = 'a2'$$,
    $$DELETE FROM %s WHERE id IN ('b', 'e')$$,
    $$INSERT INTO %s VALUES ('a2', 'u2', 9)$$,
    $$INSERT INTO %s VALUES ('f', 'u1', 1); UPDATE %s SET v = 3 WHERE id = 'f'; DELETE FROM %s WHERE id = 'f'$$,
    $$UPDATE %s SET v = v WHERE id = 'zzz'$$,
    $$UPDATE %s SET owner = NULL WHERE id = 'cx'$$);
SELECT * FROM compare('text');

-- the transition tables are shared with the table's other statement
-- triggers: those firing before and after pg_sync's still see every row
CREATE TABLE seen (trig text, n int);
CREATE FUNCTION count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO seen SELECT TG_NAME, count(*) FROM new_rows;
    RETURN NULL;
END
$$;
CREATE TRIGGER aa_count AFTER INSERT ON cap_text_on REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_rows();
CREATE TRIGGER zz_count AFTER INSERT ON cap_text_on REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_rows();
SELECT sync_pull(user_id => 'u1') IS NOT NULL AS cached;
INSERT INTO cap_text_on VALUES ('g', 'u1', 1);
INSERT INTO cap_text_on VALUES ('h', 'u1', 1), ('i', 'u1', 1);
SELECT trig, n FROM seen ORDER BY n, trig;
SELECT id, owner, deleted FROM records('cap_text_on') WHERE id IN ('g', 'h', 'i') ORDER BY id;

-- a rolled-back subtransaction takes its direct records with it
BEGIN;
SAVEPOINT s;
INSERT INTO cap_text_on VALUES ('j', 'u1', 1);
UPDATE cap_text_on SET v = 5 WHERE id = 'g';
ROLLBACK TO s;
DELETE FROM cap_text_on WHERE id = 'h';
COMMIT;
SELECT id, owner, deleted FROM records('cap_text_on') WHERE id IN ('g', 'h', 'j') ORDER BY id;
-- g keeps the xid of its insert, not the one of the transaction that rolled
-- its update back (which deleted h)
SELECT g.xid <> h.xid AS update_rolled_back
  FROM _pg_sync.row_meta g, _pg_sync.row_meta h, _pg_sync.tables t
 WHERE t.relid = 'cap_text_on'::regclass AND g.table_id = t.table_id AND h.table_id = t.table_id
   AND g.id = 'g' AND h.id = 'h';

-- The indexes of the change records hold every record they should, whichever
-- of them a statement opened (the tombstones' partial index only when the
-- statement writes a tombstone), also when they are rebuilt between two
-- statements of the session (the writer keeps what it read of them).
CREATE EXTENSION amcheck;
CREATE FUNCTION check_row_meta() RETURNS TABLE (index regclass, checked boolean)
LANGUAGE sql AS $$
    SELECT indexrelid::regclass, bt_index_parent_check(indexrelid, true)::text = ''
      FROM pg_index WHERE indrelid = '_pg_sync.row_meta'::regclass ORDER BY indexrelid::regclass::text
$$;
BEGIN;
INSERT INTO cap_text_on VALUES ('k', 'u1', 1);
DELETE FROM cap_text_on WHERE id = 'k';
INSERT INTO cap_text_on VALUES ('k', 'u1', 2);
UPDATE cap_text_on SET owner = 'u2' WHERE id = 'i';
COMMIT;
REINDEX INDEX _pg_sync.row_meta_tombstones;
DELETE FROM cap_text_on WHERE id = 'g';
INSERT INTO cap_text_on VALUES ('l', 'u1', 1);
REINDEX TABLE _pg_sync.row_meta;
DELETE FROM cap_text_on WHERE id = 'l';
UPDATE cap_text_on SET v = 9 WHERE id = 'k';
INSERT INTO cap_text_on VALUES ('m', 'u1', 1);
SELECT id, owner, deleted FROM records('cap_text_on') WHERE id IN ('g', 'i', 'k', 'l', 'm') ORDER BY id, owner;
SELECT * FROM check_row_meta();

-- the setting itself
SHOW pg_sync.direct_capture;

DROP TABLE cap_text_on, cap_text_off, scenario_xids, seen;
DROP FUNCTION make_tables(text, text, text), records(text), compare(text), count_rows(), check_row_meta();
DROP EXTENSION amcheck;
DROP PROCEDURE run_both(text, text, text[]);
DROP DOMAIN short_code;
DROP TYPE mood;
