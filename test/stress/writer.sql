\set k random(1, 300)
\set op random(1, 10)
\set pause random(0, 30)
BEGIN;
INSERT INTO src SELECT 'k' || :k, nextval('version_seq'), 'w' WHERE :op <= 6
    ON CONFLICT (id) DO UPDATE SET v = nextval('version_seq'), payload = 'u';
\sleep :pause ms
DELETE FROM src WHERE id = 'k' || :k AND :op > 8;
\sleep :pause ms
COMMIT;
