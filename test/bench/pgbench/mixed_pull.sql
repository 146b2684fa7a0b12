-- mixed load, 90%: an incremental pull for a user of this client's share
-- (naming the user's device when named = 1)
-- (clients never share users). A client stands for many devices that sync
-- now and then, so the token it pulls with is between token_age_ms and twice
-- that old: a token returned by a pull is put aside and used once it is
-- token_age_ms old (token_age_ms = 0: each pull uses the previous one's).
\set u :client_id + :clients * random(0, :upc - 1)
BEGIN;
SELECT set_config('request.jwt.claims', bench.claims(bench.user_name(:u)), true);
SELECT p AS doc, p ->> 'timestamp' AS newtok, bench.epoch_ms(clock_timestamp()) AS now_ms
  FROM sync_pull(:tok, client_id => CASE WHEN :named = 1 THEN 'device-' || :u END) AS p \gset
COMMIT;
\if :now_ms - :pend_ms >= :token_age_ms
\set tok :pend
\set pend :newtok
\set pend_ms :now_ms
\endif
