-- each connection is one client: pull, then push what it has seen
SELECT race_pull(:client_id + 1);
SELECT race_push(:client_id + 1);
