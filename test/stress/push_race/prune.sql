SELECT race_prune();
\sleep 200 ms
