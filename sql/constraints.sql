\set SHOW_CONTEXT never
TRUNCATE tok;
-- the user's own constraints: an error naming the constraint, the table and
-- the record; nothing of the push is applied
CREATE TABLE lists (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE entries (
    id text PRIMARY KEY,
    list_id text REFERENCES lists (id),
    slug text UNIQUE,
    qty int CHECK (qty >= 0),
    label text NOT NULL DEFAULT 'entry'
);
SELECT sync_register_table('lists');
SELECT sync_register_table('entries');
INSERT INTO lists VALUES ('l1', 'groceries');
INSERT INTO entries VALUES ('e1', 'l1', 'milk', 1, 'Milk');
SELECT pull() IS NOT NULL AS pulled;

-- CHECK, in a batch: the failing record is named
SELECT err($q$ SELECT push('{"entries": {"created": [{"id": "e2", "qty": 1}, {"id": "e3", "qty": -1}, {"id": "e4", "qty": 2}]}}') $q$);
-- NOT NULL
SELECT err($q$ SELECT push('{"entries": {"updated": [{"id": "e1", "label": null}]}}') $q$);
SELECT err($q$ SELECT push('{"lists": {"created": [{"id": "l2"}]}}') $q$);
-- foreign key
SELECT err($q$ SELECT push('{"entries": {"created": [{"id": "e5", "list_id": "no-such-list"}]}}') $q$);
-- unique, against an existing row and within the push
SELECT err($q$ SELECT push('{"entries": {"created": [{"id": "e6", "slug": "milk"}]}}') $q$);
SELECT err($q$ SELECT push('{"entries": {"created": [{"id": "e7", "slug": "eggs"}, {"id": "e8", "slug": "eggs"}]}}') $q$);
-- a failing update among good ones
SELECT err($q$ SELECT push('{"lists": {"created": [{"id": "l3", "name": "ok"}]}, "entries": {"updated": [{"id": "e1", "qty": -5}]}}') $q$);
-- deleting a row others still reference
INSERT INTO entries VALUES ('e9', 'l1', NULL, 0, 'ref');
SELECT pull() IS NOT NULL AS pulled;
SELECT err($q$ SELECT push('{"lists": {"deleted": ["l1"]}}') $q$);

-- the size limit
SET pg_sync.max_push_bytes = 1024;
SELECT err(format('SELECT push(%L)', json_build_object('lists', json_build_object('created',
       json_build_array(json_build_object('id', 'big', 'name', repeat('x', 2000)))))));
RESET pg_sync.max_push_bytes;

-- nothing above changed anything
SELECT * FROM lists ORDER BY id;
SELECT * FROM entries ORDER BY id;
-- and a valid push still goes through
SELECT push('{"entries": {"created": [{"id": "e10", "list_id": "l1", "slug": "eggs", "qty": 12}]}}');
SELECT id, list_id, slug, qty, label FROM entries WHERE id = 'e10';

SELECT sync_unregister_table('entries');
SELECT sync_unregister_table('lists');
DROP TABLE entries, lists;
