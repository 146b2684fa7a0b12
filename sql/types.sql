\set SHOW_CONTEXT never
TRUNCATE tok;
-- the value mapping, both ways
CREATE DOMAIN short_text AS text CHECK (length(VALUE) <= 5);
CREATE TABLE everything (
    id text PRIMARY KEY,
    t text, vc varchar(10), u uuid,
    i2 smallint, i4 integer, i8 bigint, num numeric, r real, d double precision,
    b boolean,
    ts timestamp, tstz timestamptz, dt date,
    j json, jb jsonb,
    dom short_text, arr int[], iv interval
);
SELECT sync_register_table('everything');
SET timezone = 'America/New_York';
INSERT INTO everything VALUES
  ('full', 'text "quoted" \ back', 'varchar', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   -32768, 2147483647, 9007199254740993, 12345678901234567890.123456789, 1.5, 0.1,
   true,
   '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.789+00', '2024-02-29',
   '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": "x"}',
   'abc', '{1,2,3}', '1 day 2 hours'),
  ('nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  ('special', E'tab\there\nnewline \u00e9 \U0001F600', '', '00000000-0000-0000-0000-000000000000',
   0, -1, -9223372036854775808, 'NaN', 'Infinity', '-Infinity',
   false,
   'infinity', '-infinity', '1969-12-31',
   '"just a string"', 'null',
   '', '{}', '-1 sec'),
  ('old', 'before 1970', NULL, NULL, NULL, NULL, NULL, -0.000001, -0, 1e300,
   NULL, '1900-01-01 00:00:00.0005', '1969-12-31 23:59:59.999+00', '0001-01-01', NULL, NULL,
   NULL, NULL, NULL);
-- exact bytes of a first pull (the timestamp masked): strings, numbers,
-- booleans, epoch milliseconds, documents as strings, null
SELECT regexp_replace(sync_pull()::text, '"timestamp":\d+', '"timestamp":T') AS pull;
-- the pulled document is valid JSON and every id a string
SELECT bool_and(jsonb_typeof(r->'id') = 'string') AS ids_are_strings
  FROM jsonb_array_elements(sync_pull()::jsonb #> '{changes,everything,updated}') r;

-- push converts back through the same mapping
SELECT pull() IS NOT NULL AS pulled;
SELECT push($$ {"everything": {"created": [
  {"id": "pushed", "t": "héllo \"x\"", "vc": "v", "u": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
   "i2": 7, "i4": -7, "i8": 9007199254740991, "num": 0.1, "r": 2.5, "d": 1e-7,
   "b": true, "ts": 1709210096789, "tstz": 1709210096789.5, "dt": 1709164800000,
   "j": "{\"k\": [1, 2]}", "jb": "[true, null]", "dom": "five!", "arr": "{4,5}", "iv": "3 days"},
  {"id": "nulls2", "t": null, "i4": null, "b": null, "ts": null, "jb": null},
  {"id": "alt", "b": 1, "i4": 3.0, "ts": "2020-01-01 00:00:00", "dt": 0, "jb": {"as": "object"}}
 ]}} $$);
SELECT id, t, vc, u, i2, i4, i8, num, r, d, b, ts, tstz, dt, j, jb, dom, arr, iv
  FROM everything WHERE id IN ('pushed', 'nulls2', 'alt') ORDER BY id;
-- and pulls back to the same JSON values
SELECT r FROM jsonb_array_elements(pull() #> '{everything,updated}') r ORDER BY r->>'id';

-- a value that does not fit: an error naming table, record and column; nothing applied
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad1", "i2": 40000}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad2", "i4": 1.5}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad3", "i4": "12"}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad4", "u": "not-a-uuid"}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad5", "t": 12}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad6", "b": "true"}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad7", "tstz": 1e300}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad8", "dt": -1e20}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad9", "jb": "{not json"}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad10", "dom": "too long"}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad11", "vc": "more than ten chars"}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad12", "i8": 9223372036854775808}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad13", "r": 1e39}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad14", "arr": [1, 2]}]}}') $q$);
SELECT count(*) AS bad_rows FROM everything WHERE id LIKE 'bad%';

-- numbers reach their columns exactly as written: never through a double
SELECT push($$ {"everything": {"created": [
  {"id": "n1", "num": 12345678901234567.89, "i8": 9007199254740993, "d": 0.1},
  {"id": "n2", "num": 123456789012345678901234567890.000000000000000000001},
  {"id": "n3", "num": 1e400, "i4": 1e3, "i2": 12.0, "r": 1.5e-3},
  {"id": "n4", "num": -0.5E-400, "i8": -9223372036854775808, "d": 4.9e-324},
  {"id": "n5", "tstz": 1718000000000.5, "dt": -1, "ts": 1.718e12}
]}} $$);
SELECT id, CASE WHEN length(num::text) > 60 THEN 'a number of ' || length(num::text) || ' characters'
                ELSE num::text END AS num, i2, i4, i8, r, d
  FROM everything WHERE id LIKE 'n_' AND id <> 'n5' ORDER BY id;
SELECT num = 12345678901234567.89 AS exact_numeric, i8 = 9007199254740993 AS exact_bigint
  FROM everything WHERE id = 'n1';
SELECT (SELECT num = 1e400 FROM everything WHERE id = 'n3') AS beyond_double,
       (SELECT num = -0.5e-400 FROM everything WHERE id = 'n4') AS below_double;
SELECT tstz AT TIME ZONE 'UTC' AS half_millisecond, dt AS day_before_1970, ts AS from_exponent
  FROM everything WHERE id = 'n5';
-- out of a column's range: an error, never a rounding (overflow, and a
-- non-zero value that would underflow to zero)
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad15", "d": 1e400}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad16", "d": 1e-400}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad17", "r": 1e-50}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad18", "i4": 2147483648}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad19", "i8": 1e19}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad20", "num": 1e200000}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad21", "b": 2}]}}') $q$);
SELECT err($q$ SELECT push('{"everything": {"created": [{"id": "bad22", "tstz": 9.3e15}]}}') $q$);
SELECT count(*) AS bad_rows FROM everything WHERE id LIKE 'bad%';

-- keys of other types travel as strings too
CREATE TABLE by_int (id bigint PRIMARY KEY, v text);
CREATE TABLE by_uuid (id uuid PRIMARY KEY, v text);
SELECT sync_register_table('by_int');
SELECT sync_register_table('by_uuid');
INSERT INTO by_int VALUES (42, 'answer');
INSERT INTO by_uuid VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'u');
SELECT pull() - 'everything' AS by_key_type;
SELECT push('{"by_int": {"created": [{"id": "43", "v": "next"}], "updated": [{"id": "42", "v": "ANSWER"}]},
              "by_uuid": {"updated": [{"id": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "v": "same row, upper case"}]}}');
SELECT * FROM by_int ORDER BY id;
SELECT * FROM by_uuid;
SELECT push('{"by_int": {"created": [{"id": "forty-four"}]}}');
SELECT push('{"by_int": {"created": [{"id": "99999999999999999999"}]}}');

RESET timezone;
SELECT sync_unregister_table(t) FROM unnest(ARRAY['everything', 'by_int', 'by_uuid']::regclass[]) t;
DROP TABLE everything, by_int, by_uuid;
DROP DOMAIN short_text;
