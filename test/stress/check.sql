-- after all writers stopped: two final pulls per client, then compare
SELECT stress_pull(1); SELECT stress_pull(2); SELECT stress_pull(3); SELECT stress_pull(4);
SELECT stress_pull(1); SELECT stress_pull(2); SELECT stress_pull(3); SELECT stress_pull(4);
SELECT 'missing' AS problem, count(*) AS n FROM (
    SELECT c, id, v, payload FROM src, generate_series(1, 4) c
    EXCEPT SELECT client, id, v, payload FROM replica) x
UNION ALL
SELECT 'extra', count(*) FROM (
    SELECT client, id, v, payload FROM replica
    EXCEPT SELECT c, id, v, payload FROM src, generate_series(1, 4) c) x
UNION ALL
SELECT 'duplicate deliveries', count(*) FROM seen WHERE n > 1
UNION ALL
SELECT 'clients', count(DISTINCT client) FROM tok;
