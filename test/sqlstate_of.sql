-- sqlstate_of(q): the SQLSTATE the statement q fails with, 'ok' when it does
-- not fail. Loaded by the failover and crash tests.
CREATE FUNCTION sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
