-- Strings in pulls are escaped exactly as PostgreSQL's own JSON functions
-- escape them: every control character, quotes, backslashes, and non-ASCII
-- text, in text and varchar columns, in keys and through output functions.
SET client_min_messages = warning;
CREATE TABLE enc (id text PRIMARY KEY, t text, vc varchar(200), a text[]);
SELECT sync_register_table('enc');
INSERT INTO enc
SELECT 'k' || b || CASE WHEN b < 32 OR b IN (34, 92) THEN chr(b) ELSE '' END,
       'x' || chr(b) || 'y' || repeat(chr(b), 3),
       chr(b) || 'mid' || chr(b),
       ARRAY[chr(b), 'z"\']
  FROM generate_series(1, 127) b;
-- a character JSON escapes (or the nearest ones it does not) at every place
-- of a 24-byte run, after multibyte text or none: runs are copied whole and
-- found several bytes at a time
INSERT INTO enc
SELECT 'pos' || p || '-' || b, repeat('é', p % 3) || repeat('a', p) || chr(b) || repeat('b', 23 - p), NULL, NULL
  FROM generate_series(0, 23) p, unnest(ARRAY[1, 10, 31, 32, 33, 34, 35, 91, 92, 93, 127]) b;
INSERT INTO enc VALUES ('ünï', 'tab	nl
"q" \ back é 😀', '€', ARRAY['ä']), ('empty', '', '', '{}'), ('nulls', NULL, NULL, NULL);

CREATE TEMP TABLE pulled AS SELECT sync_pull()::text AS doc;
-- every row's values, exactly as to_json() writes them, are in the pull
SELECT count(*) AS rows,
       count(*) FILTER (WHERE position(to_json(e.id)::text IN p.doc) > 0) AS ids_exact,
       count(*) FILTER (WHERE e.t IS NULL OR position(to_json(e.t)::text IN p.doc) > 0) AS texts_exact,
       count(*) FILTER (WHERE e.vc IS NULL OR position(to_json(e.vc)::text IN p.doc) > 0) AS varchars_exact,
       count(*) FILTER (WHERE e.a IS NULL OR position(to_json(e.a::text)::text IN p.doc) > 0) AS arrays_exact
  FROM enc e, pulled p;
-- and read back (a first pull lists rows as updated), every value is the one
-- stored
SELECT count(*) AS round_trips
  FROM enc e
  JOIN jsonb_array_elements((SELECT doc::jsonb->'changes'->'enc'->'updated' FROM pulled)) r
    ON r->>'id' = e.id
 WHERE (r->>'t') IS NOT DISTINCT FROM e.t AND (r->>'vc') IS NOT DISTINCT FROM e.vc::text
   AND (r->>'a') IS NOT DISTINCT FROM e.a::text;
SELECT sync_unregister_table('enc');
DROP TABLE enc;
