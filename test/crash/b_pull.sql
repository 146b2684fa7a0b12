SELECT bench_pull(:client_id + 1);
