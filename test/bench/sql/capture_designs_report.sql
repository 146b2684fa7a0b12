-- The results of test/bench/capture_designs.sh as Markdown, from cd.run,
-- cd.size, cd.tabstat and cd.pull. psql variables: growth (updates of the
-- growth phase), heavy_changed, user_changed, ordinary (the ordinary user
-- of the pulls), pull_edits.
\set ON_ERROR_STOP on
\pset footer off
\o /dev/null

CREATE TEMP TABLE rp AS SELECT :growth::int AS growth;

CREATE TEMP VIEW designs AS
SELECT d.* FROM cd.design d WHERE EXISTS (SELECT FROM cd.run r WHERE r.design = d.name);

CREATE TEMP VIEW w AS
SELECT design, op,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY tps) AS tps,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY wal_bytes / txns) AS wal,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lat_ms) AS lat,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu_s * 1e6 / txns) AS cpu,
       count(*) AS rounds
  FROM cd.run GROUP BY design, op;

CREATE FUNCTION pg_temp.num(x float8, fmt text DEFAULT 'FM999,999,990') RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(to_char(x, fmt), '—') $$;
CREATE FUNCTION pg_temp.ms(x float8) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x IS NULL THEN '—'
                WHEN x < 1 THEN to_char(x, 'FM0.000')
                WHEN x < 10 THEN to_char(x, 'FM0.00')
                WHEN x < 100 THEN to_char(x, 'FM00.0')
                ELSE to_char(x, 'FM999999') END $$;
CREATE FUNCTION pg_temp.mb(x float8) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x IS NULL THEN '—' ELSE to_char(x / 1048576.0, 'FM999,990.0') END $$;
CREATE FUNCTION pg_temp.tps(d text, o text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT tps FROM w WHERE design = d AND op = o $$;
CREATE FUNCTION pg_temp.ratio(d text, o text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(to_char(pg_temp.tps(d, o) / nullif(pg_temp.tps('a', o), 0), 'FM0.00') || '×', '—') $$;
CREATE FUNCTION pg_temp.wal(d text, o text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT wal FROM w WHERE design = d AND op = o $$;
CREATE FUNCTION pg_temp.cpu(d text, o text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT pg_temp.num(c.cpu) || CASE WHEN d = 'a' THEN '' ELSE ' (' || to_char(c.cpu - a.cpu, 'FMS999,990') || ')' END
      FROM w c, w a WHERE c.design = d AND c.op = o AND a.design = 'a' AND a.op = o $$;
-- change over the growth phase, per update, of a design's relations of a role and kind
CREATE FUNCTION pg_temp.added(d text, r text, k text, what text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT sum(CASE what WHEN 'tuples' THEN a.tuples - b.tuples ELSE a.tuple_bytes - b.tuple_bytes END)::float8
           / nullif((SELECT growth FROM rp), 0)
      FROM cd.size a JOIN cd.size b USING (design, rel)
     WHERE a.phase = 'after growth' AND b.phase = 'before growth' AND a.design = d AND a.role = r
       AND (k IS NULL OR a.kind = k) $$;
-- bytes of a design's relations of a role in a phase
CREATE FUNCTION pg_temp.bytes(ph text, d text, r text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT sum(bytes)::float8 FROM cd.size WHERE phase = ph AND design = d AND role = r $$;
CREATE FUNCTION pg_temp.growth(d text, r text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT (pg_temp.bytes('after growth', d, r) - pg_temp.bytes('before growth', d, r))
           / nullif((SELECT growth FROM rp), 0) * 1000 / 1024 $$;
-- HOT share of the updates of the growth phase, over a design's records
CREATE FUNCTION pg_temp.hot(d text, recs text[]) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN sum(a.n_tup_upd - b.n_tup_upd) > 0
                THEN to_char(100.0 * sum(a.n_tup_hot_upd - b.n_tup_hot_upd) / sum(a.n_tup_upd - b.n_tup_upd), 'FM990') || '%'
                ELSE '—' END
      FROM cd.tabstat a JOIN cd.tabstat b USING (design, tbl)
     WHERE a.phase = 'after growth' AND b.phase = 'before growth' AND a.design = d AND a.tbl = ANY (recs) $$;
CREATE FUNCTION pg_temp.pull(d text, who text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT format('%s ms / %s', pg_temp.ms(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)),
                                   percentile_cont(0.5) WITHIN GROUP (ORDER BY buffers))
                       FROM cd.pull WHERE design = d AND who = $2 AND rep > 0 HAVING count(*) > 0), '—') $$;

CREATE TEMP TABLE lines (n serial, line text);
INSERT INTO lines (line) VALUES
  ('## Results'), (''),
  ('What each design writes for one written row of the user table:'), ('');
INSERT INTO lines (line)
SELECT format('- **%s**: %s', label, writes) FROM designs ORDER BY ord;

INSERT INTO lines (line) VALUES
  (''),
  ('| design | INSERT tps (× A) | UPDATE tps (× A) | CPU µs per INSERT (vs A) | CPU µs per UPDATE (vs A) | WAL B per INSERT | WAL B per UPDATE | tracking MB after load | tracking, added per UPDATE: heap versions / index entries / bytes | record updates HOT | changed ids of heavy: ms / buffers | changed ids of ' || :'ordinary' || ': ms / buffers |'),
  ('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
INSERT INTO lines (line)
SELECT format('| %s | %s (%s) | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s | %s |',
              label,
              pg_temp.num(pg_temp.tps(name, 'insert')), pg_temp.ratio(name, 'insert'),
              pg_temp.num(pg_temp.tps(name, 'update')), pg_temp.ratio(name, 'update'),
              pg_temp.cpu(name, 'insert'), pg_temp.cpu(name, 'update'),
              pg_temp.num(pg_temp.wal(name, 'insert')), pg_temp.num(pg_temp.wal(name, 'update')),
              CASE WHEN cardinality(tracking) = 0 THEN '—' ELSE pg_temp.mb(pg_temp.bytes('after load', name, 'tracking')) END,
              CASE WHEN cardinality(tracking) = 0 THEN '—'
                   ELSE format('%s / %s / %s', pg_temp.num(pg_temp.added(name, 'tracking', 'heap', 'tuples'), 'FM990.00'),
                               pg_temp.num(pg_temp.added(name, 'tracking', 'index', 'tuples'), 'FM990.00'),
                               pg_temp.num(pg_temp.added(name, 'tracking', NULL, 'bytes'))) END,
              CASE WHEN cardinality(records) = 0 THEN '—' ELSE pg_temp.hot(name, records) END,
              pg_temp.pull(name, 'heavy'), pg_temp.pull(name, :'ordinary'))
  FROM designs ORDER BY ord;

INSERT INTO lines (line) VALUES
  (''),
  ('- tps: median of the rounds (pgbench, single-row statements, one per transaction); × A: that median over A''s median.'),
  ('- CPU µs: CPU time of the run''s backends per transaction (user + system, from the postmaster''s reaped children), median of the rounds; in parentheses the difference to A. It depends much less than tps on how much CPU other work on the machine leaves; it leaves out pgbench, the WAL writer and the checkpointer.'),
  ('- WAL B: bytes of WAL per transaction, median of the rounds (every run starts right after a CHECKPOINT, so first touches of pages write full-page images).'),
  ('- tracking, added per UPDATE: over the growth phase (' || :growth || ' single-row UPDATEs after a VACUUM, the same rows in every design), the change in tuple versions of the tracking tables (live + dead, after page pruning), in entries of their indexes and in the bytes of both (pgstattuple), per UPDATE; what VACUUM (or, for a log, retention) has to remove again.'),
  ('- record updates HOT: HOT updates / updates of the per-row records (and of Cw''s watermark) in the growth phase.'),
  ('- changed ids: the query that finds what changed since a token (see below), median execution time and shared buffers (hit + read) of EXPLAIN (ANALYZE, BUFFERS, TIMING OFF); heavy: '
     || :heavy_changed || ' rows changed, ' || :'ordinary' || ': ' || :user_changed || ' rows changed, each row ' || :pull_edits || ' times.'),
  ('- B, C, Cw, D, E and F are PL/pgSQL statement triggers, Ht a PL/pgSQL row trigger: their costs include PL/pgSQL''s. Bx (the extension), Dc, Dk and Hs are written in C, with no SQL: compare them with each other for what the storage itself costs.');

-- per round
INSERT INTO lines (line) VALUES (''), ('### Rounds'), (''),
  ('TPS of every run, and its ratio to A''s run of the same round; pos is the run''s place in the round''s order.'), ('');
INSERT INTO lines (line)
SELECT '| design | op | ' || string_agg(format('round %s (pos)', round), ' | ' ORDER BY round) || ' | latency ms (median) | CPU µs per transaction, each round |'
  FROM (SELECT DISTINCT round FROM cd.run) r;
INSERT INTO lines (line)
SELECT '|---|---|' || string_agg('--:|', '' ORDER BY round) || '--:|--:|' FROM (SELECT DISTINCT round FROM cd.run) r;
INSERT INTO lines (line)
SELECT format('| %s | %s | %s | %s | %s |', d.label, r.op,
              string_agg(format('%s (%s) %s', pg_temp.num(r.tps), r.pos,
                                CASE WHEN r.design = 'a' THEN '' ELSE to_char(r.tps / a.tps, 'FM0.00') || '×' END),
                         ' | ' ORDER BY r.round),
              pg_temp.ms(percentile_cont(0.5) WITHIN GROUP (ORDER BY r.lat_ms)),
              string_agg(pg_temp.num(r.cpu_s * 1e6 / r.txns), ', ' ORDER BY r.round))
  FROM cd.run r JOIN designs d ON d.name = r.design
  LEFT JOIN cd.run a ON a.design = 'a' AND a.op = r.op AND a.round = r.round
 GROUP BY d.ord, d.label, r.op ORDER BY r.op, d.ord;

-- pulls
INSERT INTO lines (line) VALUES (''), ('### Finding the changed ids'), (''),
  ('| design | user | rows changed | plan | first run: ms / buffers | median ms (p10–p90) | median buffers |'),
  ('|---|---|--:|---|--:|--:|--:|');
INSERT INTO lines (line)
SELECT format('| %s | %s | %s | %s | %s ms / %s | %s (%s–%s) | %s |', d.label, p.who, p.changed,
              (SELECT plan FROM cd.pull x WHERE x.design = p.design AND x.who = p.who AND x.rep = 0),
              pg_temp.ms(max(ms) FILTER (WHERE rep = 0)), max(buffers) FILTER (WHERE rep = 0),
              pg_temp.ms(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE rep > 0)),
              pg_temp.ms(percentile_cont(0.1) WITHIN GROUP (ORDER BY ms) FILTER (WHERE rep > 0)),
              pg_temp.ms(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms) FILTER (WHERE rep > 0)),
              percentile_cont(0.5) WITHIN GROUP (ORDER BY buffers) FILTER (WHERE rep > 0))
  FROM cd.pull p JOIN cd.design d ON d.name = p.design
 GROUP BY d.ord, d.label, p.design, p.who, p.changed ORDER BY p.who, d.ord;

-- sizes
INSERT INTO lines (line) VALUES (''), ('### Relations'), (''),
  ('Sizes (pg_relation_size, MB) after the load, before the growth phase (after the timed rounds and a VACUUM) and after it; per UPDATE of the growth phase: the change in tuple versions (heap) or entries (index), live + dead, and in their bytes (pgstattuple), and in the relation''s size.'), (''),
  ('| design | relation | kind | MB after load | MB before growth | MB after growth | tuples per UPDATE | tuple bytes per UPDATE | relation bytes per UPDATE |'),
  ('|---|---|---|--:|--:|--:|--:|--:|--:|');
INSERT INTO lines (line)
SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | %s |', d.label, s.rel, s.kind,
              pg_temp.mb(max(bytes) FILTER (WHERE phase = 'after load')),
              pg_temp.mb(max(bytes) FILTER (WHERE phase = 'before growth')),
              pg_temp.mb(max(bytes) FILTER (WHERE phase = 'after growth')),
              pg_temp.num(((max(tuples) FILTER (WHERE phase = 'after growth')) - (max(tuples) FILTER (WHERE phase = 'before growth')))
                          / nullif(:growth, 0)::float8, 'FM990.00'),
              pg_temp.num(((max(tuple_bytes) FILTER (WHERE phase = 'after growth')) - (max(tuple_bytes) FILTER (WHERE phase = 'before growth')))
                          / nullif(:growth, 0)::float8),
              pg_temp.num(((max(bytes) FILTER (WHERE phase = 'after growth')) - (max(bytes) FILTER (WHERE phase = 'before growth')))
                          / nullif(:growth, 0)::float8))
  FROM cd.size s JOIN designs d ON d.name = s.design
 GROUP BY d.ord, d.label, s.role, s.tbl, s.rel, s.kind
 ORDER BY d.ord, s.role DESC, s.tbl, s.kind, s.rel;

-- HOT
INSERT INTO lines (line) VALUES (''), ('### Updates in the growth phase'), (''),
  ('| design | table | inserts | updates | HOT updates | HOT |'), ('|---|---|--:|--:|--:|--:|');
INSERT INTO lines (line)
SELECT format('| %s | %s | %s | %s | %s | %s |', d.label, a.tbl,
              pg_temp.num(a.n_tup_ins - b.n_tup_ins), pg_temp.num(a.n_tup_upd - b.n_tup_upd),
              pg_temp.num(a.n_tup_hot_upd - b.n_tup_hot_upd),
              CASE WHEN a.n_tup_upd > b.n_tup_upd
                   THEN to_char(100.0 * (a.n_tup_hot_upd - b.n_tup_hot_upd) / (a.n_tup_upd - b.n_tup_upd), 'FM990') || '%'
                   ELSE '—' END)
  FROM cd.tabstat a JOIN cd.tabstat b USING (design, tbl) JOIN designs d ON d.name = a.design
 WHERE a.phase = 'after growth' AND b.phase = 'before growth'
 ORDER BY d.ord, a.tbl;

\o
SELECT line FROM lines ORDER BY n;
