SELECT bench_write(:client_id);
