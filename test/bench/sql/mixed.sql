-- Helpers of the pgbench-driven cases (write overhead, mixed load) and of the
-- memory measurement.
\set ON_ERROR_STOP on

-- A push of 10 records for ordinary user u: 6 created, 2 updated, 2 deleted.
-- The updated and deleted records are rows of the user's original data; m
-- picks which (four distinct rows). An updated row that an earlier push
-- deleted is created again, as WatermelonDB expects.
CREATE FUNCTION bench.mixed_doc(u bigint, m int) RETURNS text
    LANGUAGE sql VOLATILE AS $$
WITH p AS (SELECT users, per_user, heavy, greatest(per_user / 4, 1) AS step FROM bench.params),
     c AS (SELECT nextval('bench.mseq') AS s FROM generate_series(1, 6))
SELECT json_build_object('notes', json_build_object(
    'created', (SELECT json_agg(json_build_object(
                    'id', 'mx-' || c.s, 'owner', bench.user_name(u), 'title', 'Mixed note ' || c.s,
                    'body', substr(repeat(md5(c.s::text) || ' ', 3), 1, 100), 'done', false,
                    'priority', c.s % 1000, 'score', (c.s / 7.0)::float8,
                    'created_at', 1718000000000 + c.s, 'updated_at', 1718000000000 + c.s,
                    '_status', 'created', '_changed', ''))
                  FROM c),
    'updated', (SELECT json_agg(json_build_object(
                    'id', bench.user_row_id(u, m % p.step + k * p.step, p.users, p.heavy),
                    'owner', bench.user_name(u), 'title', 'Mixed edit', 'body', repeat('e', 100),
                    'done', true, 'priority', k, 'score', 0.5,
                    'created_at', 1704067200000, 'updated_at', 1718000000000,
                    '_status', 'updated', '_changed', 'title,body,done'))
                  FROM p, generate_series(0, 1) AS k),
    'deleted', (SELECT json_agg(bench.user_row_id(u, m % p.step + k * p.step, p.users, p.heavy))
                  FROM p, generate_series(2, 3) AS k)))::text
$$;

-- push documents of the memory measurement, written before it starts
CREATE TABLE bench.docs (name text PRIMARY KEY, doc text NOT NULL);

-- /proc/self/status of this backend, sizes in kB
CREATE FUNCTION bench.mem_status() RETURNS jsonb
    LANGUAGE sql VOLATILE AS $$
SELECT jsonb_object_agg(k, v)
  FROM (SELECT split_part(l, ':', 1) AS k, (regexp_match(l, '(\d+) kB'))[1]::bigint AS v
          FROM regexp_split_to_table(pg_read_file('/proc/self/status'), E'\n') AS l
         WHERE l ~ '^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem):') s
$$;

-- resets this backend's VmHWM to its current RSS (Linux clear_refs, "5")
CREATE FUNCTION bench.mem_reset() RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    COPY (SELECT 5) TO '/proc/self/clear_refs';
END
$$;
