SELECT bench_pull(:client_id + 11);
SELECT bench_push(:client_id + 11);
