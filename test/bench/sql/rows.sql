-- The benchmark's data set, shared by schema.sql (run.sh) and
-- capture_designs.sql. Row i: rows 1..heavy belong to "heavy", the others
-- are spread round-robin over users u00000..; ids look like WatermelonDB's
-- random 16-character ids but are a function of i.
CREATE SCHEMA IF NOT EXISTS bench;
CREATE FUNCTION bench.note_id(i bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT substr(md5('n' || i), 1, 16) $$;
CREATE FUNCTION bench.user_name(u bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'u' || lpad(u::text, 5, '0') $$;
-- every row of the data set: users x per_user rows plus heavy rows of "heavy"
CREATE FUNCTION bench.source_rows(users int, per_user int, heavy int)
    RETURNS TABLE (id text, owner text, title text, body text, done boolean, priority integer,
                   score double precision, created_at timestamptz, updated_at timestamptz)
    LANGUAGE sql IMMUTABLE
    AS $$
SELECT bench.note_id(i),
       CASE WHEN i <= heavy THEN 'heavy'
            ELSE bench.user_name((i - heavy - 1) % users) END,
       'Note ' || i,
       substr(repeat(md5(i::text) || ' ', 3), 1, 100),
       i % 3 = 0,
       (i % 1000)::int,
       (i % 997) / 7.0,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' + (i % 86400) * interval '1 second'
  FROM generate_series(1, heavy + users::bigint * per_user) AS i
$$;
