\set SHOW_CONTEXT never
TRUNCATE tok;
-- sync_push: WatermelonDB's push rules
CREATE TABLE posts (
    id text PRIMARY KEY,
    title text NOT NULL DEFAULT 'untitled',
    body text,
    likes int DEFAULT 0,
    title_len int GENERATED ALWAYS AS (length(title)) STORED
);
CREATE TABLE comments (id text PRIMARY KEY, post_id text, body text CHECK (body <> ''));
SELECT sync_register_table('posts');
SELECT sync_register_table('comments');
INSERT INTO posts (id, title, body) VALUES ('s1', 'Server one', 'from SQL');
SELECT pull() IS NOT NULL AS pulled;

-- created that does not exist: inserted; columns missing from the record get
-- their defaults; _status, _changed, unknown keys and generated columns are ignored
SELECT push('{"posts": {"created": [{"id": "c1", "body": "new", "_status": "created", "_changed": "", "colour": "red", "title_len": 99}], "updated": [], "deleted": []}}');
SELECT * FROM posts WHERE id = 'c1';
-- created that exists: updated (a retried push of a create the client has since pulled)
SELECT pull() IS NOT NULL AS pulled;
SELECT push('{"posts": {"created": [{"id": "c1", "title": "Retried", "body": "new"}], "updated": [], "deleted": []}}');
SELECT id, title, body, likes FROM posts WHERE id = 'c1';
-- updated that is missing: created
SELECT push('{"posts": {"created": [], "updated": [{"id": "u1", "title": "Was missing"}], "deleted": []}}');
SELECT id, title, body, likes FROM posts WHERE id = 'u1';
-- updated: only the columns sent are written
SELECT push('{"posts": {"updated": [{"id": "s1", "likes": 5}]}}');
SELECT id, title, body, likes FROM posts WHERE id = 's1';
-- deleted that is missing: ignored; deleted that exists: gone (u1 was pushed
-- after the client's token: it pulls it back first, as the next sync does)
SELECT pull() -> 'posts' -> 'updated' AS echoed;
SELECT push('{"posts": {"deleted": ["never-existed", "u1"]}}');
SELECT id FROM posts ORDER BY id;
-- the pushed changes reach other clients like any change
SELECT pull('other');
SELECT pull();

-- all or nothing: a failure in the second table leaves the first untouched
SELECT pull() IS NOT NULL AS pulled;
SELECT push('{"posts": {"created": [{"id": "c2", "title": "half"}]}, "comments": {"created": [{"id": "k1", "post_id": "c2", "body": ""}]}}');
SELECT count(*) AS c2_rows FROM posts WHERE id = 'c2';
-- an unknown table with records is an error, an empty one is skipped
SELECT push('{"tags": {"created": [{"id": "t1"}], "updated": [], "deleted": []}}');
SELECT push('{"tags": {"created": [], "updated": [], "deleted": []}, "posts": {"created": [{"id": "c3"}]}}');
-- one id twice in a push
SELECT push('{"posts": {"created": [{"id": "d1"}], "updated": [{"id": "d1"}]}}');
SELECT push('{"posts": {"updated": [{"id": "d1"}], "deleted": ["d1"]}}');
SELECT count(*) AS d1_rows FROM posts WHERE id = 'd1';

-- conflicts (policy abort): a record changed on the server after the
-- client's pull fails the whole push, naming table and id
SELECT pull() IS NOT NULL AS pulled;
UPDATE posts SET likes = likes + 1 WHERE id = 's1';
SELECT push('{"posts": {"created": [{"id": "c9", "title": "would be new"}], "updated": [{"id": "s1", "title": "Stale edit"}], "deleted": []}}');
SELECT push('{"posts": {"deleted": ["s1"]}}');
SELECT id, title, likes FROM posts WHERE id IN ('s1', 'c9') ORDER BY id;
-- deleted on the server after the pull: updating it is a conflict too
DELETE FROM posts WHERE id = 'c3';
SELECT push('{"posts": {"updated": [{"id": "c3", "title": "edit of a deleted post"}]}}');
-- after pulling again the same edits apply: rows the client has seen are no conflict
SELECT pull();
SELECT push('{"posts": {"updated": [{"id": "s1", "title": "Fresh edit"}]}}');
SELECT id, title, likes FROM posts WHERE id = 's1';
-- the client's own earlier push is not a conflict for the next sync
SELECT pull() IS NOT NULL AS pulled;
SELECT push('{"posts": {"updated": [{"id": "s1", "title": "Second edit"}]}}');
-- conflicts are found from the owner's records written since the token;
-- with more of them than about twice the pushed records, by the pushed ids:
-- the same answers either way, and a rolled-back write is no conflict
SELECT pull() IS NOT NULL AS pulled;
INSERT INTO posts (id, title) SELECT 'many' || i, 'server' FROM generate_series(1, 70) i;
UPDATE posts SET likes = likes + 1 WHERE id = 's1';
SELECT push('{"posts": {"updated": [{"id": "s1", "title": "Stale after many"}]}}');
SELECT pull() IS NOT NULL AS pulled;
UPDATE posts SET likes = likes + 1 WHERE id LIKE 'many%';
BEGIN;
UPDATE posts SET likes = likes + 1 WHERE id = 's1';
ROLLBACK;
SELECT push('{"posts": {"updated": [{"id": "s1", "title": "After many and a rollback"}]}}');
SELECT pull() IS NOT NULL AS pulled;
BEGIN;
UPDATE posts SET likes = likes + 1 WHERE id = 's1';
ROLLBACK;
SELECT push('{"posts": {"updated": [{"id": "s1", "title": "After a rollback"}]}}');
SELECT id, title, likes FROM posts WHERE id = 's1';
DELETE FROM posts WHERE id LIKE 'many%';

-- policies
CREATE TABLE prefs (id text PRIMARY KEY, val text);
CREATE TABLE counters (id text PRIMARY KEY, val text);
SELECT sync_register_table('prefs', conflict_policy => 'client_wins');
SELECT sync_register_table('counters', conflict_policy => 'server_wins');
INSERT INTO prefs VALUES ('theme', 'light'), ('lang', 'en');
INSERT INTO counters VALUES ('a', 'server'), ('b', 'server');
SELECT pull() IS NOT NULL AS pulled;
UPDATE prefs SET val = 'dark' WHERE id = 'theme';
UPDATE counters SET val = 'server, later' WHERE id = 'a';
-- client_wins: the pushed record overwrites the server's newer change
SELECT push('{"prefs": {"updated": [{"id": "theme", "val": "blue"}, {"id": "lang", "val": "fr"}]}}');
-- server_wins: the conflicting record is dropped, the others apply
SELECT push('{"counters": {"updated": [{"id": "a", "val": "client"}, {"id": "b", "val": "client"}], "deleted": []}}');
SELECT * FROM prefs ORDER BY id;
SELECT * FROM counters ORDER BY id;

-- a pull-only table rejects every pushed record (the rest of the push
-- applies); the next pull sends the server's row again, so that the device
-- can drop its local edit and get the server's state back. (A record the
-- server does not have goes back in "deleted" only on a per-user table: on
-- this shared one a mark would reach every user, so "3" is not sent.)
CREATE TABLE catalog (id int PRIMARY KEY, label text);
SELECT sync_register_table('catalog', options => '{"pull_only": true}');
INSERT INTO catalog VALUES (1, 'read me'), (2, 'and me');
SELECT pull() -> 'catalog' AS catalog;
SELECT push('{"catalog": {"created": [{"id": "3", "label": "made up"}], "updated": [{"id": "1", "label": "changed"}], "deleted": ["2"]},
              "posts": {"updated": [{"id": "s1", "title": "applied alongside"}]}}');
SELECT * FROM catalog ORDER BY id;
SELECT title FROM posts WHERE id = 's1';
SELECT pull() -> 'catalog' AS catalog_resent;
SELECT pull() -> 'catalog' AS then_nothing;
SELECT push('{"catalog": {"created": [], "updated": [], "deleted": []}}');

-- a push before any pull may create but not delete
SELECT sync_push('{"posts": {"created": [{"id": "first-sync", "title": "offline"}]}}', NULL);
SELECT sync_push('{"posts": {"deleted": ["s1"]}}', 0);
-- without a token, an existing record is a conflict: the client never saw it
SELECT sync_push('{"posts": {"created": [{"id": "s1", "title": "blind"}]}}', NULL);
-- named arguments
SELECT sync_push(changes => '{}', last_pulled_at => token());

SELECT sync_unregister_table(t) FROM unnest(ARRAY['posts', 'comments', 'prefs', 'counters', 'catalog']::regclass[]) t;
DROP TABLE posts, comments, prefs, counters, catalog;
