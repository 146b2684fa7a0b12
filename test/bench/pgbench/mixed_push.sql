-- mixed load, 10%: a pull for a fresh token, then a push of 10 records
-- (6 created, 2 updated, 2 deleted) built beforehand, in one transaction.
-- Each client pushes for the users of its share in turn, so one user's
-- pushes are (users / clients) pushes of its client apart.
\set pushes :pushes + 1
\set u :client_id + :clients * (:pushes % :upc)
\set m random(0, 99)
BEGIN;
SELECT set_config('request.jwt.claims', bench.claims(bench.user_name(:u)), true);
SELECT p ->> 'timestamp' AS fresh
  FROM sync_pull(:tok, client_id => CASE WHEN :named = 1 THEN 'device-' || :u END) AS p \gset
SELECT bench.mixed_doc(:u, :m) AS doc \gset
SELECT sync_push(:doc, :fresh, client_id => CASE WHEN :named = 1 THEN 'device-' || :u END);
COMMIT;
