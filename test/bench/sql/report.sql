-- The results table, as Markdown, from bench.timing and bench.metric.
\set ON_ERROR_STOP on
\pset footer off
\o /dev/null

CREATE TEMP VIEW stats AS
SELECT case_name, impl, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY total_ms) AS p50,
       percentile_cont(0.1) WITHIN GROUP (ORDER BY total_ms) AS p10,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY total_ms) AS p90,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY call_ms) AS call_p50,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY bytes) AS bytes
  FROM bench.timing
 WHERE rep > 0
 GROUP BY case_name, impl;

CREATE FUNCTION pg_temp.ms(x float8) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x IS NULL THEN '—'
                WHEN x < 1 THEN to_char(x, 'FM0.000')
                WHEN x < 10 THEN to_char(x, 'FM0.00')
                WHEN x < 100 THEN to_char(x, 'FM00.0')
                ELSE to_char(x, 'FM999999') END $$;

CREATE FUNCTION pg_temp.cell(c text, i text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT format('%s ms (%s–%s)', pg_temp.ms(p50), pg_temp.ms(p10), pg_temp.ms(p90))
                       FROM stats WHERE case_name = c AND impl = i), '—') $$;

CREATE FUNCTION pg_temp.p50(c text, i text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT p50 FROM stats WHERE case_name = c AND impl = i $$;

CREATE FUNCTION pg_temp.x(a float8, b float8) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL OR b IS NULL OR b = 0 THEN '—' ELSE to_char(a / b, 'FM990.00') || '×' END $$;

CREATE FUNCTION pg_temp.metric(c text, i text, k text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT avg(value) FROM bench.metric WHERE case_name = c AND impl = i AND key = k $$;

CREATE FUNCTION pg_temp.yes(b boolean) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN b THEN 'yes' WHEN NOT b THEN '**no**' ELSE '—' END $$;

CREATE FUNCTION pg_temp.pct(r text, s int, q float8) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT percentile_cont(q) WITHIN GROUP (ORDER BY us) / 1000.0
      FROM bench.mixed_log WHERE run = r AND (s IS NULL OR script = s) $$;

-- whether a case ran (CASES may leave some out)
CREATE FUNCTION pg_temp.ran(c text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT FROM bench.timing WHERE case_name = c)
        OR EXISTS (SELECT FROM bench.metric WHERE case_name = c) $$;

CREATE TEMP TABLE lines (n serial, line text);

-- one row of the results table
CREATE FUNCTION pg_temp.row(label text, a text, b text, c text, r1 text, r2 text, target text, met text)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO lines (line) VALUES (format('| %s | %s | %s | %s | %s | %s | %s | %s |',
                                            label, a, b, c, r1, r2, target, met)) $$;

INSERT INTO lines (line) VALUES
 ('## Results'),
 (''),
 ('Server-side times: median (p10–p90) over the repetitions, each call in its own transaction, timed with clock_timestamp() inside the server from just before the call to the end of its COMMIT. "pg_sync ÷ limit" is the time ratio of medians (lower is better); "baseline ÷ pg_sync" is how many times faster pg_sync is than the PL/pgSQL baseline. pgbench rows report client-side figures over a Unix socket (round trip included).'),
 (''),
 ('| Case | pg_sync | Physical limit | PL/pgSQL baseline | pg_sync ÷ limit | baseline ÷ pg_sync | Target | Met |'),
 ('|---|---|---|---|---|---|---|---|');

SELECT pg_temp.row(format('First pull of one user''s %s rows', (SELECT to_char(heavy, 'FM999,999,999') FROM bench.params)),
       pg_temp.cell('first_pull', 'pg_sync'), pg_temp.cell('first_pull', 'limit'), pg_temp.cell('first_pull', 'plpgsql'),
       pg_temp.x(pg_temp.p50('first_pull', 'pg_sync'), pg_temp.p50('first_pull', 'limit')),
       pg_temp.x(pg_temp.p50('first_pull', 'plpgsql'), pg_temp.p50('first_pull', 'pg_sync')),
       '≤ 1.25× limit; ≥ 1× baseline speed',
       pg_temp.yes(pg_temp.p50('first_pull', 'pg_sync') <= 1.25 * pg_temp.p50('first_pull', 'limit')
                   AND pg_temp.p50('first_pull', 'pg_sync') <= pg_temp.p50('first_pull', 'plpgsql')))
 WHERE pg_temp.ran('first_pull');

-- median over the repetitions of the heap pages holding the user's rows
-- (notes) or its change records (row_meta) after the changes
CREATE FUNCTION pg_temp.pages(c text, i text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY value), 'FM999990'), '?')
      FROM bench.metric WHERE case_name = c AND impl = i AND key = 'pages' $$;

SELECT pg_temp.row(format('Incremental pull: %s changed rows of one user, %s rows / %s users; %s; %s: on %s heap pages (median), its change records on %s; %s',
                          coalesce(v.n, per_user), to_char(users::bigint * per_user + heavy, 'FM999,999,999'),
                          to_char(users, 'FM999,999'), v.label,
                          CASE WHEN v.interleaved
                               THEN format('owners interleaved, as an app writes them (%s users change one row each in turn)', :interleave)
                               WHEN v.n IS NOT NULL THEN 'the user''s rows written together (one UPDATE)'
                               ELSE 'the user''s rows written together (one UPDATE of them all)' END,
                          pg_temp.pages(v.c, 'notes'), pg_temp.pages(v.c, 'row_meta'), m.label),
       pg_temp.cell(v.c || m.suffix, 'pg_sync'), pg_temp.cell(v.c || m.suffix, 'limit'), pg_temp.cell(v.c || m.suffix, 'plpgsql'),
       pg_temp.x(pg_temp.p50(v.c || m.suffix, 'pg_sync'), pg_temp.p50(v.c || m.suffix, 'limit')),
       pg_temp.x(pg_temp.p50(v.c || m.suffix, 'plpgsql'), pg_temp.p50(v.c || m.suffix, 'pg_sync')),
       '≤ 2× limit; p50 ≤ 0.5 ms',
       pg_temp.yes(pg_temp.p50(v.c || m.suffix, 'pg_sync') <= 2 * pg_temp.p50(v.c || m.suffix, 'limit')
                   AND pg_temp.p50(v.c || m.suffix, 'pg_sync') <= 0.5))
  FROM bench.params,
       (VALUES (1, 'incr_write', 'the pull records a new checkpoint', false, NULL::int),
               (2, 'incr_reuse', 'the pull reuses a younger checkpoint', false, NULL),
               (3, 'incr_write_interleaved', 'the pull records a new checkpoint', true, NULL),
               (4, 'incr_reuse_interleaved', 'the pull reuses a younger checkpoint', true, NULL),
               (5, 'incr_small', 'the pull reuses a younger checkpoint', false, :small)) AS v(o, c, label, interleaved, n),
       (VALUES (1, '', 'the changed rows read once since they were written'),
               (2, '_first', 'each implementation the first reader of the changed rows')) AS m(o, suffix, label)
 WHERE pg_temp.ran(v.c || m.suffix)
 ORDER BY v.o, m.o;

SELECT pg_temp.row(format('Empty pull (nothing changed), same table; %s', v.label),
       pg_temp.cell(v.c, 'pg_sync'), pg_temp.cell(v.c, 'limit'), pg_temp.cell(v.c, 'plpgsql'),
       pg_temp.x(pg_temp.p50(v.c, 'pg_sync'), pg_temp.p50(v.c, 'limit')),
       pg_temp.x(pg_temp.p50(v.c, 'plpgsql'), pg_temp.p50(v.c, 'pg_sync')),
       'p50 ≤ 0.3 ms',
       pg_temp.yes(pg_temp.p50(v.c, 'pg_sync') <= 0.3))
  FROM (VALUES (1, 'empty_write', 'the pull records a new checkpoint'),
               (2, 'empty_reuse', 'the pull reuses a younger checkpoint')) AS v(o, c, label)
 WHERE pg_temp.ran(v.c)
 ORDER BY v.o;

SELECT pg_temp.row(v.label,
       pg_temp.cell(v.c, 'pg_sync'), pg_temp.cell(v.c, 'limit'), pg_temp.cell(v.c, 'plpgsql'),
       pg_temp.x(pg_temp.p50(v.c, 'pg_sync'), pg_temp.p50(v.c, 'limit')),
       pg_temp.x(pg_temp.p50(v.c, 'plpgsql'), pg_temp.p50(v.c, 'pg_sync')),
       '≤ 1.8× limit; ≥ 3× faster than baseline',
       pg_temp.yes(pg_temp.p50(v.c, 'pg_sync') <= 1.8 * pg_temp.p50(v.c, 'limit')
                   AND pg_temp.p50(v.c, 'plpgsql') >= 3 * pg_temp.p50(v.c, 'pg_sync')))
  FROM (VALUES (1, 'push_1k', 'Push of 1,000 records (½ created, ¼ updated, ¼ deleted)'),
               (2, 'push_10k', 'Push of 10,000 records (same mix)')) AS v(o, c, label)
 WHERE pg_temp.ran(v.c)
 ORDER BY v.o;
-- the change records of a push written directly or by SQL: the same push
-- twice per repetition, rolled back, in alternating order (call time)
SELECT pg_temp.row(v.label,
       pg_temp.cell(v.c, 'capture_direct'), '—', '—', '—', '—',
       format('reported; by SQL (pg_sync.direct_capture = off) the same push takes %s ms, %s the time with direct capture',
              pg_temp.ms(pg_temp.p50(v.c, 'capture_sql')),
              pg_temp.x(pg_temp.p50(v.c, 'capture_sql'), pg_temp.p50(v.c, 'capture_direct'))),
       pg_temp.yes(pg_temp.p50(v.c, 'capture_sql') IS NOT NULL))
  FROM (VALUES (1, 'push_1k', 'Push of 1,000 records, call alone (rolled back), change records written directly (the default)'),
               (2, 'push_10k', 'Push of 10,000 records, call alone (rolled back), change records written directly (the default)')) AS v(o, c, label)
 WHERE pg_temp.ran(v.c)
 ORDER BY v.o;

-- a push naming its device, against the same push naming none
SELECT pg_temp.row(format('Push of 1,000 records (same mix) by the user with %s rows, naming its device (`client_id`), after the plan cache settled (one session, in turn with the same push naming no device)',
                          to_char((SELECT heavy FROM bench.params), 'FM999,999,999')),
       pg_temp.cell('push_device', 'device'), '—', '—', '—', '—',
       format('reported; naming no device the same push takes %s ms: naming it costs %s',
              pg_temp.ms(pg_temp.p50('push_device', 'anonymous')),
              pg_temp.x(pg_temp.p50('push_device', 'device'), pg_temp.p50('push_device', 'anonymous'))),
       pg_temp.yes(pg_temp.p50('push_device', 'anonymous') IS NOT NULL))
 WHERE pg_temp.ran('push_device');

-- pushes of conflicting records: every variant against the baseline "abort"
-- (the same records pushed with no conflicting server write)
CREATE FUNCTION pg_temp.cpu(c text, i text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value)
      FROM bench.metric WHERE case_name = c AND impl = i AND key = 'cpu_ms' AND note <> '0' $$;
CREATE FUNCTION pg_temp.wait_share(c text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY w.value / nullif(w.value + u.value, 0))
      FROM bench.metric w JOIN bench.metric u USING (case_name, impl, note)
     WHERE w.case_name = c AND w.key = 'wait_ms' AND u.key = 'cpu_ms' AND w.note <> '0' $$;
CREATE TEMP VIEW cf AS
SELECT v.name, v.ord, v.policy, v.options, v.label, c.case_name,
       pg_temp.p50(c.case_name, v.name) / pg_temp.p50(c.case_name, 'abort') AS ratio,
       pg_temp.cpu(c.case_name, v.name) / pg_temp.cpu(c.case_name, 'abort') AS cpu_ratio
  FROM bench.cf_variant v, (VALUES ('conflict_1k'), ('conflict_10k')) AS c(case_name)
 WHERE pg_temp.ran(c.case_name);

SELECT pg_temp.row(format('Push of %s conflicting records under each conflict policy (see *Conflict policies* below)', v.n),
       format('baseline (abort, the same records with no conflict) %s ms; the %s other variants %s–%s× of it (CPU time %s–%s×)',
              pg_temp.ms(pg_temp.p50(v.c, 'abort')), count(*),
              to_char(min(cf.ratio), 'FM990.00'), to_char(max(cf.ratio), 'FM990.00'),
              to_char(min(cf.cpu_ratio), 'FM990.00'), to_char(max(cf.cpu_ratio), 'FM990.00')),
       '—', '—', '—', '—',
       'every push''s outcome checked; each variant ≤ 3× the baseline''s CPU time',
       pg_temp.yes(max(cf.cpu_ratio) <= 3))
  FROM (VALUES (1, 'conflict_1k', '1,000'), (2, 'conflict_10k', '10,000')) AS v(o, c, n)
  JOIN cf ON cf.case_name = v.c AND cf.name <> 'abort'
 GROUP BY v.o, v.c, v.n
 ORDER BY v.o;

CREATE FUNCTION pg_temp.mem(i text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('peak RSS +%s MB (VmHWM; +%s MB of it shared buffers), private peak +%s MB',
                  to_char((pg_temp.metric('push_10k_mem', i, 'hwm_kb') - pg_temp.metric('push_10k_mem', i, 'rss_before_kb')) / 1024, 'FM9990.0'),
                  to_char(pg_temp.metric('push_10k_mem', i, 'shmem_growth_kb') / 1024, 'FM9990.0'),
                  to_char((pg_temp.metric('push_10k_mem', i, 'anon_peak_kb') - pg_temp.metric('push_10k_mem', i, 'anon_before_kb')) / 1024, 'FM9990.0')) $$;
SELECT pg_temp.row('Push of 10,000 records: backend memory',
       pg_temp.mem('pg_sync'), pg_temp.mem('limit'), pg_temp.mem('plpgsql'), '—', '—', 'reported',
       pg_temp.yes(pg_temp.metric('push_10k_mem', 'pg_sync', 'hwm_kb') IS NOT NULL))
 WHERE pg_temp.ran('push_10k_mem');

CREATE FUNCTION pg_temp.tps(c text, i text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('%s TPS (%s ms)', to_char(pg_temp.metric(c, i, 'tps'), 'FM999999'),
                  to_char(pg_temp.metric(c, i, 'lat_ms'), 'FM990.000')) $$;
SELECT pg_temp.row(format(v.label, :write_clients),
       pg_temp.tps(v.c, 'notes'), pg_temp.tps(v.c, 'notes_raw'), pg_temp.tps(v.c, 'notes_pl'),
       pg_temp.x(pg_temp.metric(v.c, 'notes', 'tps'), pg_temp.metric(v.c, 'notes_raw', 'tps')),
       pg_temp.x(pg_temp.metric(v.c, 'notes', 'tps'), pg_temp.metric(v.c, 'notes_pl', 'tps')),
       'registered ≥ 0.85× unregistered TPS',
       pg_temp.yes(pg_temp.metric(v.c, 'notes', 'tps') >= 0.85 * pg_temp.metric(v.c, 'notes_raw', 'tps')))
  FROM (VALUES (1, 'write_insert', 'Write overhead: single-row INSERT, %s pgbench clients (TPS, avg latency)'),
               (2, 'write_update', 'Write overhead: single-row UPDATE, %s pgbench clients (TPS, avg latency)')) AS v(o, c, label)
 WHERE pg_temp.ran(v.c)
 ORDER BY v.o;

SELECT pg_temp.row(format('Write overhead: an app transaction on 2 registered tables, %s pgbench clients (BEGIN; INSERT a note; UPDATE another note of the user; INSERT a task of that note; UPDATE one of its tasks; SELECT its tasks; COMMIT), against the same on unregistered copies (TPS, avg latency)', :write_clients),
       pg_temp.tps('write_app', 'registered'), pg_temp.tps('write_app', 'unregistered'), '—',
       pg_temp.x(pg_temp.metric('write_app', 'registered', 'tps'), pg_temp.metric('write_app', 'unregistered', 'tps')),
       '—',
       'registered ≥ 0.9× unregistered TPS',
       pg_temp.yes(pg_temp.metric('write_app', 'registered', 'tps') >= 0.9 * pg_temp.metric('write_app', 'unregistered', 'tps')))
 WHERE pg_temp.ran('write_app');

-- the same runs with the change records written by the SQL upsert
SELECT pg_temp.row(format(v.label, :write_clients),
       pg_temp.tps(v.c, v.i), pg_temp.tps(v.c, v.raw), '—',
       pg_temp.x(pg_temp.metric(v.c, v.i, 'tps'), pg_temp.metric(v.c, v.raw, 'tps')),
       '—',
       format('reported; direct capture (the default) runs at %s its TPS',
              pg_temp.x(pg_temp.metric(v.c, v.reg, 'tps'), pg_temp.metric(v.c, v.i, 'tps'))),
       pg_temp.yes(pg_temp.metric(v.c, v.i, 'tps') IS NOT NULL))
  FROM (VALUES (1, 'write_insert', 'notes_sqlcap', 'notes_raw', 'notes',
                'Write overhead: single-row INSERT, %s pgbench clients, change records written by SQL (pg_sync.direct_capture = off), in turn with the rows above'),
               (2, 'write_update', 'notes_sqlcap', 'notes_raw', 'notes',
                'Write overhead: single-row UPDATE, %s pgbench clients, change records written by SQL (pg_sync.direct_capture = off), in turn with the rows above'),
               (3, 'write_app', 'registered_sqlcap', 'unregistered', 'registered',
                'Write overhead: the app transaction, %s pgbench clients, change records written by SQL (pg_sync.direct_capture = off), in turn with the rows above')) AS v(o, c, i, raw, reg, label)
 WHERE pg_temp.ran(v.c)
 ORDER BY v.o;

SELECT pg_temp.row(format('Mixed load: %s pgbench clients, 90%% pulls / 10%% pushes of 10 records, %s s; pull tokens %s–%s ms old%s',
                          :clients, pg_temp.metric(v.c, 'pg_sync', 'secs'),
                          pg_temp.metric(v.c, 'pg_sync', 'token_age_ms'), 2 * pg_temp.metric(v.c, 'pg_sync', 'token_age_ms'),
                          v.extra),
       format('%s TPS; pull p50 %s / p99 %s ms; push p50 %s / p99 %s ms; %s failed, %s server errors; %s checkpoints recorded (%s/s)',
              to_char(pg_temp.metric(v.c, 'pg_sync', 'tps'), 'FM999999'),
              pg_temp.ms(pg_temp.pct(v.c, 0, 0.5)), pg_temp.ms(pg_temp.pct(v.c, 0, 0.99)),
              pg_temp.ms(pg_temp.pct(v.c, 1, 0.5)), pg_temp.ms(pg_temp.pct(v.c, 1, 0.99)),
              coalesce(pg_temp.metric(v.c, 'pg_sync', 'failed')::text, '?'),
              pg_temp.metric(v.c, 'pg_sync', 'server_errors'),
              pg_temp.metric(v.c, 'pg_sync', 'checkpoints'),
              to_char(pg_temp.metric(v.c, 'pg_sync', 'checkpoints') / pg_temp.metric(v.c, 'pg_sync', 'secs'), 'FM99990.0')),
       '—', '—', '—',
       CASE WHEN v.c = 'mixed_named' THEN pg_temp.x(pg_temp.metric('mixed_named', 'pg_sync', 'tps'),
                                                     pg_temp.metric('mixed', 'pg_sync', 'tps')) || ' the TPS without devices'
            ELSE '—' END,
       v.target,
       pg_temp.yes(pg_temp.metric(v.c, 'pg_sync', 'pgbench_rc') = 0
                   AND coalesce(pg_temp.metric(v.c, 'pg_sync', 'failed'), 0) = 0
                   AND pg_temp.metric(v.c, 'pg_sync', 'server_errors') = 0))
  FROM (VALUES (1, 'mixed', '', 'TPS, p50/p99 reported; no errors'),
               (2, 'mixed_named', '; every call names its device (client_id)', 'TPS reported next to the run without devices; no errors')) AS v(o, c, extra, target)
 WHERE pg_temp.ran(v.c)
 ORDER BY v.o;

SELECT pg_temp.row(format('End to end: empty pulls through the edge function (Deno), %s connections, autocannon, %s s',
                          pg_temp.metric('http', 'pg_sync', 'conns'), pg_temp.metric('http', 'pg_sync', 'secs')),
       format('%s req/s; p50 %s / p99 %s ms; %s non-2xx, %s errors',
              to_char(pg_temp.metric('http', 'pg_sync', 'rps'), 'FM999999'),
              pg_temp.metric('http', 'pg_sync', 'p50_ms'), pg_temp.metric('http', 'pg_sync', 'p99_ms'),
              pg_temp.metric('http', 'pg_sync', 'non2xx'), pg_temp.metric('http', 'pg_sync', 'errors')),
       format('HTTP ceiling (same server, an unknown route: no JWT check, no database): %s req/s, p99 %s ms',
              to_char(pg_temp.metric('http', 'ceiling', 'rps'), 'FM999999'), pg_temp.metric('http', 'ceiling', 'p99_ms')),
       '—',
       format('%s× the ceiling''s req/s', to_char(pg_temp.metric('http', 'pg_sync', 'rps') / pg_temp.metric('http', 'ceiling', 'rps'), 'FM990.00')),
       '—', 'req/s and p99 reported; no errors',
       pg_temp.yes(pg_temp.metric('http', 'pg_sync', 'non2xx') = 0 AND pg_temp.metric('http', 'pg_sync', 'errors') = 0))
 WHERE pg_temp.ran('http');

-- the conflict policies, one row per variant
INSERT INTO lines (line)
SELECT line FROM (VALUES
 (1, ''),
 (2, '### Conflict policies'),
 (3, ''),
 (4, format('Pushes of N updated records whose rows the server changed after the client''s token (one SQL UPDATE of the same N rows), under each policy; every variant has a table of its own with the same rows, and every push meets the same rows in every repetition (the server''s UPDATE sets them to one state whatever earlier pushes left; the baseline''s rows are reset to their loaded values before its token, and the conflict inbox is emptied); the variants run interleaved, in an order that rotates from one repetition to the next. **Baseline**: `abort` on the same N records with no conflicting server write, i.e. what pushing these records costs when nothing conflicts. `abort_detect` is abort with the conflict: the time until sync_push fails with SY001 (then ROLLBACK). ms: call + COMMIT, median (p10–p90); CPU: the backend''s CPU time during the call (/proc/self/schedstat), median; the calls waited for a CPU during %s of their wall time (medians), so the CPU ratios are the steadier ones on a loaded machine and the 3× mark is checked on them. Each push''s outcome is checked (result counts and sample rows); a wrong outcome stops the benchmark.',
            concat_ws(' and ', to_char(100 * pg_temp.wait_share('conflict_1k'), 'FM990') || '% (1,000 records)',
                      to_char(100 * pg_temp.wait_share('conflict_10k'), 'FM990') || '% (10,000 records)'))),
 (5, ''),
 (6, '| Variant | Policy and options | Outcome (checked) | 1,000: ms | ÷ baseline | CPU ms | CPU ÷ baseline | 10,000: ms | ÷ baseline | CPU ms | CPU ÷ baseline | CPU ≤ 3× |'),
 (7, '|---|---|---|---|---|---|---|---|---|---|---|---|')) AS h(o, line)
 WHERE pg_temp.ran('conflict_1k') OR pg_temp.ran('conflict_10k')
 ORDER BY o;
INSERT INTO lines (line)
SELECT format('| %s | `%s`%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |',
              v.name, v.policy, CASE WHEN v.options = '{}' THEN '' ELSE format(' `%s`', v.options) END, v.label,
              pg_temp.cell('conflict_1k', v.name),
              pg_temp.x(pg_temp.p50('conflict_1k', v.name), pg_temp.p50('conflict_1k', 'abort')),
              pg_temp.ms(pg_temp.cpu('conflict_1k', v.name)),
              pg_temp.x(pg_temp.cpu('conflict_1k', v.name), pg_temp.cpu('conflict_1k', 'abort')),
              pg_temp.cell('conflict_10k', v.name),
              pg_temp.x(pg_temp.p50('conflict_10k', v.name), pg_temp.p50('conflict_10k', 'abort')),
              pg_temp.ms(pg_temp.cpu('conflict_10k', v.name)),
              pg_temp.x(pg_temp.cpu('conflict_10k', v.name), pg_temp.cpu('conflict_10k', 'abort')),
              pg_temp.yes((SELECT max(cf.cpu_ratio) <= 3 FROM cf WHERE cf.name = v.name)))
  FROM bench.cf_variant v
 WHERE pg_temp.ran('conflict_1k') OR pg_temp.ran('conflict_10k')
 ORDER BY v.ord;

-- details
INSERT INTO lines (line) VALUES
 (''),
 ('## Details'),
 (''),
 ('Medians of the call alone (without its COMMIT) and of the result size:'),
 (''),
 ('| Case | Implementation | Reps | Call + COMMIT p50 | Call p50 | Result / document bytes |'),
 ('|---|---|---|---|---|---|');
INSERT INTO lines (line)
SELECT format('| %s | %s | %s | %s ms | %s ms | %s |', case_name, impl, n, pg_temp.ms(p50), pg_temp.ms(call_p50),
              coalesce(to_char(bytes, 'FM999,999,999'), '—'))
  FROM stats
 ORDER BY array_position('{first_pull,incr_write,incr_write_first,incr_reuse,incr_reuse_first,incr_write_interleaved,incr_write_interleaved_first,incr_reuse_interleaved,incr_reuse_interleaved_first,incr_small,incr_small_first,empty_write,empty_reuse,push_1k,push_10k,conflict_1k,conflict_10k}'::text[], case_name),
          array_position('{pg_sync,limit,limit_exact,plpgsql,read_rows}'::text[], impl),
          (SELECT v.ord FROM bench.cf_variant v WHERE v.name = impl);

INSERT INTO lines (line) VALUES
 (''),
 ('Implementations:'),
 (''),
 ('- **pg_sync**: `sync_pull(token)` / `sync_push(doc::json, token)` with the user''s claims set in the transaction; the token of a push comes from `sync_checkpoint()` right before it.'),
 ('- **Physical limit**: plain SQL on the same rows, no sync logic. Pulls: `SELECT json_agg(t) FROM notes t WHERE owner = $1` on the registered table itself for the first pull; `SELECT json_agg(t) FROM notes_raw t WHERE owner = $1 AND updated_at > $2` for incremental ones, on the untracked copy, to which each repetition makes the same changes as to `notes` (all columns, timestamps as ISO text). `limit_exact` (first pull only, for reference) produces the same keys and values as pg_sync (timestamps as epoch ms). Pushes: the same document upserted with `INSERT … SELECT … FROM jsonb_to_recordset(…) ON CONFLICT (id) DO UPDATE` plus a `DELETE … WHERE id IN (…)` into `notes_raw`, an untracked copy with the same indexes.'),
 ('- **PL/pgSQL baseline**: test/bench/sql/baseline.sql — `last_modified_at`/`deleted_at` kept by a trigger, `pull(last_pulled_at)` aggregating into jsonb, `push(changes, last_pulled_at)` with soft deletes and per-record updates, in the style of the Supabase WatermelonDB tutorial, on its own copy `notes_pl`.'),
 ('- **Write overhead**: pgbench, single-row INSERT / UPDATE transactions; pg_sync column = registered `notes`, limit column = unregistered `notes_raw`, baseline column = `notes_pl` with its trigger. "baseline ÷ pg_sync" there is registered TPS ÷ baseline-table TPS.'),
 ('- **App transaction** (write overhead): pgbench/app.sql, one transaction per pgbench transaction: INSERT a note, UPDATE another note of the same user (one of its first 10), INSERT a task of that note, UPDATE one of that note''s tasks (done toggled), SELECT the note''s tasks, COMMIT. pg_sync column = registered `notes` + `tasks`, limit column = unregistered `notes_raw` + `tasks_raw` (same rows and indexes); `tasks` (3 tasks on each of every user''s first 10 notes, indexes on owner and note_id) exists only while this case runs. The two variants take turns in every round.'),
 ('- **read_rows** (first pull only, for reference): reads the same rows and every column, makes no JSON: the floor below any encoding.'),
 ('- **Mixed load**: pgbench -M prepared over the Unix socket; latencies are per transaction as pgbench sees them (round trip included). A pull transaction sets the claims of a user of the client''s share and pulls with a token the client got between one and two token ages ago (pgbench/mixed_pull.sql); a push transaction pulls for a fresh token, builds a 10-record document (bench.mixed_doc) and pushes it. Clients never share users. "checkpoints recorded" counts the rows pulls added to _pg_sync.checkpoints.'),
 ('- **Incremental pull layouts**: the rows are loaded in id order and ids are hashes, so every user''s loaded rows are spread over the table either way; what an incremental pull reads is the rows changed since its token. *Written together*: one UPDATE of the user''s rows; a new version stays on its row''s page when that page has room, the others go together onto the pages the free space map offers (or the end of the table). *Owners interleaved, as an app writes them*: the user and the next users (INTERLEAVE_USERS in all) change one row each in turn, one statement per round, all in one transaction, so that the user''s new row versions lie a page or more apart, as when many users'' edits arrive over time. Same tables, rows and indexes for both; pg_sync, the limit and the baseline read the rows changed the same way, each in its own copy (notes, notes_raw, notes_pl), to which each repetition makes the same changes. The heap pages holding the user''s rows and its change records are counted after the timed calls of each repetition. Until VACUUM the rows'' old versions stay indexed where the rows were loaded, in both layouts; the interleaved cases run after the others and are followed by a VACUUM.'),
 ('- **Incremental pull, first reader or not**: the first read of a heap page after an UPDATE prunes it and sets the hint bits of its rows, work about as large as the read itself that falls on whichever query reads the page first. Each incremental case therefore alternates two kinds of repetitions, reported as two rows: in one, an untimed query reads the user''s rows in all three tables before the timed calls (*read once since they were written*); in the other, each implementation is the first reader of the changed rows of its own table (*first reader*). The implementations run in an order that puts each before each other one equally often (rotations of the list, then of the list reversed).'),
 ('- **Checkpoint variants**: the client''s token is always older than pg_sync.checkpoint_interval. When it is the newest checkpoint, the pull records a new one (an INSERT, and a COMMIT that writes a commit record but, unless pg_sync.durable_checkpoints is on, does not wait for its flush); under load a pull usually reuses a checkpoint another client recorded less than pg_sync.checkpoint_interval ago. Both are measured.'),
 ('- **Conflict policies** (sql/conflicts.sql): the user "heavy" pushes N updated records (title, priority, a jsonb `tags` array, updated_at, and the version it saw) of a table of its own per variant; between the client''s token and the push one SQL UPDATE changes the same N rows (title, priority + 1, a tag appended, a newer updated_at), so every record conflicts. The baseline ("÷ baseline") is `abort` pushing the same N records with no conflicting server write: the cost of applying them when nothing conflicts. A conflicting push under `abort` fails as a whole with SY001; `abort_detect` is the time until that error. Data: under last_write_wins and merge''s `latest` the client''s updated_at is newer on 9 records in 10; under merge''s `max` the client''s priority is higher on even records; the custom functions return the client''s row with the title "<server> + <client>". Repetition 0 is a warm-up. The tables exist only while this case runs (registered tables are part of every pull).');

\o
SELECT line FROM lines ORDER BY n;
