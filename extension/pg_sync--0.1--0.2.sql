-- pg_sync 0.1 -> 0.2
\echo Use "ALTER EXTENSION pg_sync UPDATE TO '0.2'" to load this file. \quit

-- Expired tokens are told from never-issued ones by the highest pruned id.
-- 0.1 kept no record of it: every id below the newest checkpoint that is
-- missing now counts as pruned (such a token answers SY002, never SY003).
ALTER TABLE _pg_sync.state ADD COLUMN pruned_max bigint;
UPDATE _pg_sync.state s
   SET pruned_max = coalesce((SELECT max(c.id) FROM _pg_sync.checkpoints c), s.lineage_start - 1);
ALTER TABLE _pg_sync.state ALTER COLUMN pruned_max SET NOT NULL;

-- Registrations follow their key and owner columns by number (a rename keeps
-- them). 0.1 took the key to be the current primary key and the owner
-- column by name: the columns found that way now.
ALTER TABLE _pg_sync.tables ADD COLUMN key_attnum smallint, ADD COLUMN owner_attnum smallint;
UPDATE _pg_sync.tables t
   SET key_attnum = coalesce((SELECT c.conkey[1] FROM pg_catalog.pg_constraint c
                               WHERE c.conrelid = t.relid AND c.contype = 'p'
                                 AND pg_catalog.array_length(c.conkey, 1) = 1), -1),
       owner_attnum = CASE WHEN t.owner_column IS NOT NULL THEN
                          coalesce((SELECT a.attnum FROM pg_catalog.pg_attribute a
                                     WHERE a.attrelid = t.relid AND a.attname = t.owner_column
                                       AND a.attnum > 0 AND NOT a.attisdropped), -1) END;
UPDATE _pg_sync.tables t
   SET key_column = a.attname
  FROM pg_catalog.pg_attribute a
 WHERE a.attrelid = t.relid AND a.attnum = t.key_attnum AND a.attname <> t.key_column;
ALTER TABLE _pg_sync.tables ALTER COLUMN key_attnum SET NOT NULL;

-- A registration counts from the transaction that writes it, also when
-- pg_restore writes it again: clients holding older tokens get the table
-- whole. Its key and owner columns are found by name when it is written
-- (pg_restore renumbers columns), and followed by number from then on.
CREATE OR REPLACE FUNCTION _pg_sync.stamp_registration() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.registered_xid := pg_current_xact_id();
    -- (-1 when a name is not found: the table then fails every call naming
    -- the missing column, and never turns shared or keyless)
    NEW.key_attnum := coalesce((SELECT a.attnum FROM pg_attribute a
                                 WHERE a.attrelid = NEW.relid AND a.attname = NEW.key_column
                                   AND a.attnum > 0 AND NOT a.attisdropped), -1);
    NEW.owner_attnum := CASE WHEN NEW.owner_column IS NOT NULL THEN
                            coalesce((SELECT a.attnum FROM pg_attribute a
                                       WHERE a.attrelid = NEW.relid AND a.attname = NEW.owner_column
                                         AND a.attnum > 0 AND NOT a.attisdropped), -1) END;
    RETURN NEW;
END
$$;

-- A renamed key or owner column keeps its registration: the names kept
-- there follow (a dump then restores the registration by the new names).
CREATE FUNCTION _pg_sync.follow_renames() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE _pg_sync.tables t
       SET key_column = coalesce(n.key_name, t.key_column),
           owner_column = coalesce(n.owner_name, t.owner_column)
      FROM (SELECT r.relid,
                   (SELECT a.attname FROM pg_attribute a
                     WHERE a.attrelid = r.relid AND a.attnum = r.key_attnum AND NOT a.attisdropped) AS key_name,
                   (SELECT a.attname FROM pg_attribute a
                     WHERE a.attrelid = r.relid AND a.attnum = r.owner_attnum AND NOT a.attisdropped) AS owner_name
              FROM _pg_sync.tables r
             WHERE r.relid IN (SELECT c.objid FROM pg_event_trigger_ddl_commands() c
                                WHERE c.classid = 'pg_class'::regclass)) n
     WHERE t.relid = n.relid
       AND (t.key_column IS DISTINCT FROM coalesce(n.key_name, t.key_column)
            OR t.owner_column IS DISTINCT FROM coalesce(n.owner_name, t.owner_column));
END
$$;
CREATE EVENT TRIGGER pg_sync_follow_renames ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION _pg_sync.follow_renames();

-- what sync_prune removes
CREATE INDEX row_meta_tombstones ON _pg_sync.row_meta (xid) WHERE deleted;

-- Runs of sync_prune whose removals some running transaction may not see
-- yet (it began before the run committed): such a transaction can still use
-- a removed checkpoint, so the change records that checkpoint needs stay.
CREATE TABLE _pg_sync.prunes (
    xid      xid8 PRIMARY KEY,   -- the run's transaction
    min_xmin xid8 NOT NULL       -- the oldest xmin among the checkpoints it removed
);

CREATE FUNCTION _pg_sync.oldest_xmin() RETURNS xid8
    AS 'MODULE_PATHNAME', 'sync_oldest_xmin' LANGUAGE C STRICT VOLATILE;

-- Forget checkpoints older than the retention period and the tombstones no
-- token can need any more. Tokens older than that are then refused with
-- SQLSTATE SY002 and their clients resync from scratch.
--
-- Racing traffic: a running pull or push may still use a checkpoint removed
-- here (its snapshot predates this run), and a running transaction may
-- record a checkpoint of its own, older snapshot. So tombstones stay while
-- any of these could still need them: a tombstone goes only when its writer
-- is below the xmin of every running transaction (_pg_sync.oldest_xmin()),
-- of every checkpoint left, and of every checkpoint removed by a run some
-- running transaction may not have seen commit (_pg_sync.prunes).
-- Live rows keep their change records (one per row).
--
-- It never waits and never makes a writer wait on anything but its own short
-- statement: a change record another transaction has locked is skipped (and
-- pruned next time), and a second concurrent run returns at once.
CREATE OR REPLACE FUNCTION sync_prune(retain interval DEFAULT interval '30 days')
    RETURNS TABLE (checkpoints bigint, row_changes bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    newest     bigint;
    gone_max   bigint;
    gone_xmin  xid8;
    running    xid8;
    horizon    xid8;
BEGIN
    IF retain IS NULL OR retain < interval '0' THEN
        RAISE EXCEPTION 'retain must be a non-negative interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'sync_prune() must run in a READ COMMITTED transaction'
            USING ERRCODE = 'active_sql_transaction',
                  DETAIL = 'It must see the checkpoints other transactions commit while it runs.';
    END IF;
    checkpoints := 0;
    row_changes := 0;
    -- one run at a time: another one in progress does the work
    PERFORM FROM _pg_sync.state FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;

    -- checkpoints; the newest always stays
    SELECT max(c.id) INTO newest FROM _pg_sync.checkpoints c;
    WITH gone AS (
        DELETE FROM _pg_sync.checkpoints c
         WHERE c.created_at < now() - retain AND c.id <> newest
        RETURNING c.id, pg_snapshot_xmin(c.snap) AS xmin)
    SELECT count(*), max(gone.id), min(gone.xmin) INTO checkpoints, gone_max, gone_xmin FROM gone;
    IF checkpoints > 0 THEN
        UPDATE _pg_sync.state SET pruned_max = greatest(pruned_max, gone_max);
        INSERT INTO _pg_sync.prunes (xid, min_xmin) VALUES (pg_current_xact_id(), gone_xmin);
    END IF;

    -- runs every transaction has seen commit protect nothing any more
    running := _pg_sync.oldest_xmin();
    DELETE FROM _pg_sync.prunes p WHERE p.xid < running;
    horizon := least(running,
                     (SELECT min(pg_snapshot_xmin(c.snap)) FROM _pg_sync.checkpoints c),
                     (SELECT min(p.min_xmin) FROM _pg_sync.prunes p));

    WITH gone AS (
        DELETE FROM _pg_sync.row_meta m
         USING (SELECT r.ctid FROM _pg_sync.row_meta r
                 WHERE r.deleted AND r.xid < horizon
                   FOR UPDATE SKIP LOCKED) old
         WHERE m.ctid = old.ctid
        RETURNING 1)
    SELECT count(*) INTO row_changes FROM gone;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION sync_prune(interval) IS
    'drops checkpoints older than the retention period and the tombstones no token can need';

-- Consistency check of pg_sync's state against the synced tables: one row
-- per check and table, with the number of problems found (0 everywhere:
-- consistent). Reads every synced table whole: run it after a crash, a
-- restore or an upgrade, not on every request. Names nothing but tables.
CREATE FUNCTION sync_verify()
    RETURNS TABLE (check_name text, table_name text, problems bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t        record;
    keyexpr  text;
    ownexpr  text;
    horizon  xid8 := pg_snapshot_xmax(pg_current_snapshot());
BEGIN
    -- the database's own token lineage
    check_name := 'checkpoints within the lineage'; table_name := NULL;
    SELECT count(*) INTO problems FROM _pg_sync.checkpoints c, _pg_sync.state s
     WHERE c.id < s.lineage_start
        OR c.id > (SELECT q.last_value FROM _pg_sync.checkpoint_id q);
    RETURN NEXT;
    check_name := 'a checkpoint exists';
    problems := CASE WHEN EXISTS (SELECT FROM _pg_sync.checkpoints) THEN 0 ELSE 1 END;
    RETURN NEXT;
    check_name := 'checkpoints in the past';
    SELECT count(*) INTO problems FROM _pg_sync.checkpoints c
     WHERE pg_snapshot_xmax(c.snap) > horizon;
    RETURN NEXT;

    FOR t IN SELECT r.table_id, r.relid, r.name, r.key_column, r.owner_column
               FROM _pg_sync.tables r ORDER BY r.table_id LOOP
        table_name := t.name;
        check_name := 'table exists';
        problems := CASE WHEN EXISTS (SELECT FROM pg_class c WHERE c.oid = t.relid) THEN 0 ELSE 1 END;
        RETURN NEXT;
        CONTINUE WHEN problems > 0;
        check_name := 'capture triggers installed and enabled';
        SELECT 4 - count(*) INTO problems FROM pg_trigger g
         WHERE g.tgrelid = t.relid AND g.tgenabled IN ('O', 'A')
           AND g.tgname IN ('pg_sync_capture_insert', 'pg_sync_capture_update',
                            'pg_sync_capture_delete', 'pg_sync_capture_truncate');
        RETURN NEXT;
        check_name := 'change records in the past';
        SELECT count(*) INTO problems FROM _pg_sync.row_meta m
         WHERE m.table_id = t.table_id AND m.xid >= horizon;
        RETURN NEXT;

        keyexpr := format('x.%I::text', t.key_column);
        ownexpr := CASE WHEN t.owner_column IS NULL THEN '''''::text'
                        ELSE format('coalesce(x.%I::text, '''')', t.owner_column) END;
        check_name := 'live records have their row';
        EXECUTE format('SELECT count(*) FROM _pg_sync.row_meta m WHERE m.table_id = $1 AND NOT m.deleted'
                       '   AND NOT EXISTS (SELECT FROM ONLY %s x WHERE %s = m.id AND %s = m.owner)',
                       t.relid, keyexpr, ownexpr)
           INTO problems USING t.table_id;
        RETURN NEXT;
        check_name := 'tombstones have no row';
        EXECUTE format('SELECT count(*) FROM _pg_sync.row_meta m WHERE m.table_id = $1 AND m.deleted'
                       '   AND EXISTS (SELECT FROM ONLY %s x WHERE %s = m.id AND %s = m.owner)',
                       t.relid, keyexpr, ownexpr)
           INTO problems USING t.table_id;
        RETURN NEXT;
        check_name := 'one live record per row';
        SELECT count(*) INTO problems FROM (
            SELECT m.id FROM _pg_sync.row_meta m WHERE m.table_id = t.table_id AND NOT m.deleted
             GROUP BY m.id HAVING count(*) > 1) d;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION sync_verify() IS
    'checks pg_sync''s state against the synced tables; problems = 0 everywhere when consistent';
REVOKE ALL ON FUNCTION sync_verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sync_verify() TO pg_monitor;
