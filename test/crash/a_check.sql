-- Scenario A after crash recovery, before anything else writes: the killed
-- push left nothing, pg_sync's state matches the tables, and T0 still pulls
-- exactly the changes committed after it. Prints "name value" lines.
SELECT 'pushed notes present', count(*) FROM notes WHERE id LIKE 'p-%';
SELECT 'pushed tags present', count(*) FROM tags WHERE id LIKE 'ptag-%';
SELECT 'pushed updates present', count(*) FROM notes WHERE body = 'pushed';
SELECT 'uncommitted row present', count(*) FROM notes WHERE id = 'a-uncommitted';
SELECT 'late commit present', count(*) FROM notes WHERE id = 'a-late';
SELECT 'verify problems', count(*) FROM sync_verify() WHERE problems > 0;
SELECT 'verify problem: ' || check_name || ' ' || coalesce(table_name, '-'), problems FROM sync_verify() WHERE problems > 0;

-- T0 is client 101's token: it never pulled since
SELECT 't0 is the client token', (SELECT token FROM clients WHERE client = 101) = (SELECT v FROM saved WHERE name = 'T0');
CREATE TABLE a_after AS SELECT crash_pull(101) AS r;
SELECT 't0 reset', r ->> 'reset' FROM a_after;
CREATE TEMP VIEW a_got AS
SELECT t AS tbl, k AS kind, CASE WHEN k = 'deleted' THEN e #>> '{}' ELSE e ->> 'id' END AS id
  FROM a_after, jsonb_object_keys(r -> 'changes') t,
       unnest(ARRAY['created', 'updated', 'deleted']) k,
       jsonb_array_elements(r -> 'changes' -> t -> k) e;
SELECT 't0 changes', count(*) FROM a_got;
SELECT 't0 unexpected', count(*) FROM (SELECT * FROM a_got EXCEPT ALL SELECT * FROM a_expected) x;
SELECT 't0 missing', count(*) FROM (SELECT * FROM a_expected EXCEPT ALL SELECT * FROM a_got) x;
SELECT 't0 unexpected: ' || tbl || ' ' || kind || ' ' || id, 1 FROM (SELECT * FROM a_got EXCEPT ALL SELECT * FROM a_expected) x;
SELECT 't0 missing: ' || tbl || ' ' || kind || ' ' || id, 1 FROM (SELECT * FROM a_expected EXCEPT ALL SELECT * FROM a_got) x;
