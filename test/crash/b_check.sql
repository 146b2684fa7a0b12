-- Scenario B after the restart. Prints "name value" lines.
SELECT 'committed pushes', count(*) FROM ledger;
SELECT 'committed pushed records', count(*) FROM ledger_items;
SELECT 'pulls', sum(pulls) FROM clients WHERE client < 100;
SELECT 'resets', sum(resets) FROM clients WHERE client < 100;
SELECT 'expired pushes', sum(expired_pushes) FROM clients;
SELECT 'writes', sum(writes) FROM writer_stats;
SELECT 'prune runs', runs FROM prune_stats;
SELECT 'pruned checkpoints', checkpoints FROM prune_stats;
SELECT 'pruned tombstones', tombstones FROM prune_stats;
SELECT 'unexpected errors', count(*) FROM unexpected;
SELECT 'unexpected error: ' || who || ' ' || coalesce(client::text, '-') || ' ' || state || ' ' || message, 1 FROM unexpected;
-- all or nothing: every ledger entry's records are there as pushed, and no
-- pushed record is there without its ledger entry
SELECT 'ledger records missing', count(*) FROM ledger_items i
 WHERE NOT EXISTS (SELECT FROM notes nt WHERE i.tbl = 'notes' AND nt.id = i.id AND to_jsonb(nt) = i.rec)
   AND NOT EXISTS (SELECT FROM tags t WHERE i.tbl = 'tags' AND t.id = i.id AND to_jsonb(t) = i.rec);
SELECT 'ledger entries incomplete', count(*) FROM ledger l
 WHERE l.records <> (SELECT count(*) FROM ledger_items i WHERE i.batch = l.batch);
SELECT 'records without ledger entry', count(*) FROM (
    SELECT 'notes' AS tbl, id FROM notes WHERE id LIKE 'b%'
    UNION ALL SELECT 'tags', id FROM tags WHERE id LIKE 'b%') r
 WHERE NOT EXISTS (SELECT FROM ledger_items i WHERE i.tbl = r.tbl AND i.id = r.id);
SELECT 'verify problems', count(*) FROM sync_verify() WHERE problems > 0;
SELECT 'verify problem: ' || check_name || ' ' || coalesce(table_name, '-'), problems FROM sync_verify() WHERE problems > 0;
-- every client's last committed token, as it is after the restart
CREATE TABLE b_tokens AS SELECT client, token_state(client) AS state FROM clients WHERE token IS NOT NULL;
SELECT 'tokens ' || state, count(*) FROM b_tokens GROUP BY state ORDER BY state;
-- for each: when it last pulled (before the last pull anyone committed) and
-- how old the checkpoint was that the pull answered with
SELECT 'expired token clients', string_agg(format('%s (last pull %s s before the last pull anyone committed; its token was %s when issued)',
           b.client, round(extract(epoch FROM l.last - k.pulled_at)::numeric, 2),
           CASE WHEN k.token_age IS NULL THEN 'already pruned'
                ELSE round(extract(epoch FROM k.token_age)::numeric, 2) || ' s old' END), ', ' ORDER BY b.client)
  FROM b_tokens b JOIN clients k USING (client),
       (SELECT max(pulled_at) AS last FROM clients) l
 WHERE b.state = 'SY002';
SELECT 'token of client ' || client, state FROM b_tokens WHERE state NOT IN ('ok', 'SY002') ORDER BY client;
-- every client pulls to the end (resetting on SY002)
SELECT crash_pull(client) IS NOT NULL FROM clients ORDER BY client;
SELECT crash_pull(client) IS NOT NULL FROM clients ORDER BY client;
SELECT 'verify problems after pulls', count(*) FROM sync_verify() WHERE problems > 0;
SELECT 'clients', count(*) FROM clients;
SELECT 'replica rows', count(*) FROM replica;
SELECT 'replica differences', coalesce(sum(missing + extra), 0) FROM replica_diff();
SELECT 'replica differences: client ' || client, missing || ' missing, ' || extra || ' extra'
  FROM replica_diff() WHERE missing + extra > 0;
