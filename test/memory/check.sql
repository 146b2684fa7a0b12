-- Report and verdict of the memory test (test/memory/run.sh), read from what
-- the test session recorded. Variables: n, max_rssanon_kb, max_ctx_kb.
-- Every verdict line starts with "check " and ends in "ok" or "FAIL".
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
CREATE FUNCTION pg_temp.mem_signed(bigint) RETURNS text LANGUAGE sql
    AS $$ SELECT CASE WHEN $1 >= 0 THEN '+' ELSE '' END || $1 $$;

-- per step: time since the step before, RSS, memory contexts, and the kinds
-- of context that changed most since the step before
SELECT format('%-8s %6s s  RssAnon %6s kB (%s)  VmRSS %6s kB  RssShmem %6s kB  contexts %6s kB (%s) in %s',
              l.label,
              coalesce(round(extract(epoch FROM l.at - p.at)::numeric, 1)::text, '-'),
              l.rssanon_kb, CASE WHEN p IS NULL THEN '-' ELSE pg_temp.mem_signed(l.rssanon_kb - p.rssanon_kb) END,
              l.vmrss_kb, l.rssshmem_kb,
              l.ctx_bytes / 1024, CASE WHEN p IS NULL THEN '-' ELSE pg_temp.mem_signed((l.ctx_bytes - p.ctx_bytes) / 1024) END,
              l.ctx_count)
       || CASE WHEN p IS NULL THEN '' ELSE coalesce(E'\n           changed most: ' || (
              SELECT string_agg(format('%s %s kB', name, pg_temp.mem_signed(d / 1024)), ', ' ORDER BY abs(d) DESC)
                FROM (SELECT name, d FROM (
                          SELECT coalesce(c.key, o.key) AS name,
                                 coalesce(c.value::bigint, 0) - coalesce(o.value::bigint, 0) AS d
                            FROM jsonb_each_text(l.ctx_by_name) c
                            FULL JOIN jsonb_each_text(p.ctx_by_name) o ON o.key = c.key) x
                       WHERE abs(d) >= 64 * 1024
                       ORDER BY abs(d) DESC LIMIT 4) y), '') END
  FROM mem_log l
  LEFT JOIN mem_log p ON p.seq = l.seq - 1
 ORDER BY l.seq;

SELECT format('largest contexts at %s: %s', label, top_contexts)
  FROM mem_log WHERE label IN ('warm', 'colsets') ORDER BY seq;

-- what the failing pushes failed with
SELECT format('phase 1 %-15s expected %-15s got %-9s x%s', kind, expected, sqlstate, n)
  FROM mem_failures WHERE phase = 'phase 1' ORDER BY kind, sqlstate;

-- verdicts
WITH s AS (
    SELECT (SELECT rssanon_kb FROM mem_log WHERE label = 'start') AS rss_start,
           (SELECT rssanon_kb FROM mem_log WHERE label = 'warm') AS rss_warm,
           (SELECT rssanon_kb FROM mem_log WHERE label = 'colsets') AS rss_end,
           (SELECT ctx_bytes / 1024 FROM mem_log WHERE label = 'warm') AS ctx_warm,
           (SELECT ctx_bytes / 1024 FROM mem_log WHERE label = 'colsets') AS ctx_end
)
SELECT format('check RssAnon growth start -> end: %s kB (%s -> %s kB; of it warm-up %s kB), bound %s kB: %s',
              rss_end - rss_start, rss_start, rss_end, rss_warm - rss_start, :max_rssanon_kb,
              CASE WHEN rss_end - rss_start <= :max_rssanon_kb THEN 'ok' ELSE 'FAIL' END)
       || E'\n' ||
       format('check memory-context growth warm -> end: %s kB (%s -> %s kB), bound %s kB: %s',
              ctx_end - ctx_warm, ctx_warm, ctx_end, :max_ctx_kb,
              CASE WHEN ctx_end - ctx_warm <= :max_ctx_kb THEN 'ok' ELSE 'FAIL' END)
  FROM s;

SELECT format('check failing pushes (%s of each of %s kinds, with the expected SQLSTATEs): %s',
              :n, count(DISTINCT kind),
              CASE WHEN count(DISTINCT kind) = 8
                        AND bool_and(sqlstate ~ ('^(' || expected || ')$') OR n = 0)
                        AND (SELECT bool_and(t = :n) FROM (SELECT sum(n) AS t FROM mem_failures
                                                            WHERE phase = 'phase 1' GROUP BY kind) k)
                   THEN 'ok' ELSE 'FAIL' END)
  FROM mem_failures WHERE phase = 'phase 1';

SELECT format('check all phases ran: %s', CASE WHEN count(*) = 5 THEN 'ok' ELSE 'FAIL' END)
  FROM mem_log WHERE label IN ('start', 'warm', 'failing', 'sync', 'colsets');
