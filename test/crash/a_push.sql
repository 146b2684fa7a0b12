-- Scenario A: client 101 pushes 10,000 records with its token T0 (run.sh
-- runs this in the background and kills its backend while it is blocked).
SET application_name = 'crash_push';
SELECT sync_push(a_push_doc(), (SELECT v FROM saved WHERE name = 'T0'), user_id => 'u1');
