-- maintenance racing the traffic: VACUUM and ANALYZE of the change records,
-- back to back (each sends an invalidation of row_meta and its indexes that
-- the writers' capture takes in while it opens them)
VACUUM (ANALYZE) _pg_sync.row_meta;
