\set k random(301, 320)
BEGIN;
INSERT INTO src VALUES ('k' || :k, nextval('version_seq'), 'long')
    ON CONFLICT (id) DO UPDATE SET v = nextval('version_seq'), payload = 'long';
\sleep 2000 ms
COMMIT;
