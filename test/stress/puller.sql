-- each connection is one client: a client never pulls twice at once
SELECT stress_pull(:client_id + 1);
