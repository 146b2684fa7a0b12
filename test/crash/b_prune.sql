SELECT bench_prune();
\sleep 200 ms
