-- after all traffic stopped: every client pulls until it has everything
SELECT race_pull(c) FROM generate_series(1, 8) c;
SELECT race_pull(c) FROM generate_series(1, 8) c;
SELECT 'differences', count(*) FROM (
    (SELECT c, t, id, v FROM generate_series(1, 8) c,
            LATERAL (SELECT 'ab' AS t, id, v FROM ab UNION ALL SELECT 'cw', id, v FROM cw) s
     EXCEPT SELECT client, tbl, id, v FROM replica)
    UNION ALL
    (SELECT client, tbl, id, v FROM replica
     EXCEPT SELECT c, t, id, v FROM generate_series(1, 8) c,
            LATERAL (SELECT 'ab' AS t, id, v FROM ab UNION ALL SELECT 'cw', id, v FROM cw) s)) d;
SELECT 'lost updates', count(*) FROM overwrites WHERE tbl = 'ab';
SELECT 'client_wins overwrites', count(*) FROM overwrites WHERE tbl = 'cw';
SELECT 'deadlocks', coalesce(sum(n), 0) FROM outcomes WHERE state = '40P01';
SELECT 'outcome ' || who || ' ' || state, n FROM outcomes ORDER BY 1;
