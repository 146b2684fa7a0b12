-- pg_sync 0.1 -> 0.2
\echo Use "ALTER EXTENSION pg_sync UPDATE TO '0.2'" to load this file. \quit

-- Expired tokens are told from never-issued ones by the highest pruned id.
-- 0.1 kept no record of it: every id below the newest checkpoint that is
-- missing now counts as pruned (such a token answers SY002, never SY003).
ALTER TABLE _pg_sync.state ADD COLUMN pruned_max bigint;
UPDATE _pg_sync.state s
   SET pruned_max = coalesce((SELECT max(c.id) FROM _pg_sync.checkpoints c), s.lineage_start - 1);
ALTER TABLE _pg_sync.state ALTER COLUMN pruned_max SET NOT NULL;

-- The WAL timeline checkpoint ids are handed out on (the first eight hex
-- digits of a WAL file's name): on a new one, after a promotion, they move
-- past any the old timeline can have handed out.
ALTER TABLE _pg_sync.state ADD COLUMN timeline bigint;
UPDATE _pg_sync.state
   SET timeline = ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint;

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
ALTER TABLE _pg_sync.tables ADD COLUMN replaced_xid xid8;

-- Change records: which device holds which state of a pushed row, and keyed
-- by owner first (a paged pull walks one owner's ids in order).
ALTER TABLE _pg_sync.row_meta ADD COLUMN origin text, ADD COLUMN origin_hash bigint,
                              ADD COLUMN origin_cols text;
ALTER TABLE _pg_sync.row_meta DROP CONSTRAINT row_meta_pkey,
                              ADD PRIMARY KEY (table_id, owner, id);
-- A pull finds a user's changes in this index alone: it carries each
-- record's id and origin, so no record's heap page is read.
DROP INDEX _pg_sync.row_meta_changes;
CREATE INDEX row_meta_changes ON _pg_sync.row_meta (table_id, owner, xid) INCLUDE (id, origin);

-- The conflict inbox (first: the event trigger that forgets dropped tables uses it).
CREATE TABLE _pg_sync.conflicts (
    conflict_id   bigserial PRIMARY KEY,
    table_id      integer NOT NULL,
    record_id     text NOT NULL,
    owner         text NOT NULL,        -- the record's scope: its owner, '' on a shared table
    user_id       text NOT NULL,        -- who pushed it
    client_record json,                 -- as the device pushed it; null: the device deleted it
    server_record json,                 -- as a pull sends it; null: the server deleted it
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    resolution    text
);
CREATE INDEX conflicts_open ON _pg_sync.conflicts (table_id, owner) WHERE resolved_at IS NULL;

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

-- Paged pulls (sync_pull's page_size): a page token stands for a place in
-- one pull -- the snapshot the pull is up to (base), the caller's token
-- (prev), the tables and their kind, and where the page starts. Once
-- answered, a page remembers where it ended and the token it handed out,
-- so that asking again with the same page token gets the same page.
CREATE TABLE _pg_sync.pages (
    id         bigint PRIMARY KEY,  -- the page token (a checkpoint id, never a checkpoint)
    user_id    text NOT NULL,       -- the caller ('' without a user id)
    client_id  text,                -- the device, for leaving out its own rows
    prev_id    bigint NOT NULL,     -- the caller's token (0: a first pull)
    prev_snap  pg_snapshot,         -- its snapshot
    base_snap  pg_snapshot NOT NULL,    -- the snapshot the whole pull is up to
    tables     jsonb NOT NULL,      -- [{"name", "mode": "full"|"changes"|"columns", "columns": [...]}]
    page_size  integer NOT NULL,
    pos        integer NOT NULL,    -- the table the page starts in
    after      text,                -- the last id sent in it (NULL: from its start)
    end_pos    integer,             -- answered: where the page ended
    end_after  text,
    next_id    bigint,              -- answered: the token handed out with it
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Runs of sync_prune whose removals some running transaction may not see
-- yet (it began before the run committed): such a transaction can still use
-- a removed checkpoint, so the change records that checkpoint needs stay.
CREATE TABLE _pg_sync.prunes (
    xid      xid8 PRIMARY KEY,   -- the run's transaction
    min_xmin xid8 NOT NULL       -- the oldest xmin among the checkpoints it removed
);

CREATE FUNCTION _pg_sync.oldest_xmin() RETURNS xid8
    AS 'MODULE_PATHNAME', 'sync_oldest_xmin' LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION _pg_sync.calling_role() RETURNS oid
    AS 'MODULE_PATHNAME', 'sync_calling_role' LANGUAGE C STRICT STABLE;

-- Checks a conflict policy and its options for a table and returns the
-- options with every default filled in (what the C side reads). Errors name
-- the problem: 22023 for an unknown policy, option, rule or a wrong type,
-- 42703 for a missing column, 42883 for a missing function.
CREATE FUNCTION _pg_sync.check_options(table_name regclass, key_column name, owner_column name,
                                       conflict_policy text, options jsonb) RETURNS jsonb
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    allowed  text[] := ARRAY['name', 'pull_only', 'push_mode'];
    out      jsonb := options;
    opt      text;
    col      text;
    rule     text;
    typ      regtype;
    base     oid;
    fn       regprocedure;
    rules    jsonb;
BEGIN
    IF conflict_policy IS NULL OR conflict_policy NOT IN ('abort', 'client_wins', 'server_wins', 'last_write_wins',
                                                          'version', 'merge', 'custom', 'manual', 'insert_only') THEN
        RAISE EXCEPTION 'unknown conflict policy "%"', conflict_policy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use abort, client_wins, server_wins, last_write_wins, version, merge, custom, manual or insert_only.';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    allowed := allowed || CASE conflict_policy
        WHEN 'last_write_wins' THEN ARRAY['timestamp_column']
        WHEN 'version' THEN ARRAY['version_column', 'on_conflict']
        WHEN 'merge' THEN ARRAY['columns', 'default', 'timestamp_column']
        WHEN 'custom' THEN ARRAY['function']
        ELSE ARRAY[]::text[] END;
    FOR opt IN SELECT jsonb_object_keys(options) LOOP
        IF opt <> ALL (allowed) THEN
            RAISE EXCEPTION 'unknown option "%" for conflict policy %', opt, conflict_policy
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Known options: %s.', array_to_string(allowed, ', '));
        END IF;
    END LOOP;
    IF options ? 'name' AND (jsonb_typeof(options->'name') <> 'string'
                             OR options->>'name' !~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$') THEN
        RAISE EXCEPTION 'option "name" must be a string of letters, digits and underscores'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options ? 'pull_only' AND jsonb_typeof(options->'pull_only') <> 'boolean' THEN
        RAISE EXCEPTION 'option "pull_only" must be a boolean' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options ? 'push_mode' AND coalesce(options->>'push_mode', '') NOT IN ('all', 'per_record') THEN
        RAISE EXCEPTION 'option "push_mode" must be "all" or "per_record"' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options ? 'columns' AND jsonb_typeof(options->'columns') <> 'object' THEN
        RAISE EXCEPTION 'option "columns" must be an object of column names and rules'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the timestamp of last_write_wins, and of merge's "latest"
    IF conflict_policy = 'last_write_wins'
       OR (conflict_policy = 'merge' AND (options->>'default' = 'latest'
                                          OR EXISTS (SELECT FROM jsonb_each_text(options->'columns') r WHERE r.value = 'latest'))) THEN
        col := coalesce(options->>'timestamp_column', 'updated_at');
        typ := _pg_sync.column_type(table_name, col, 'timestamp column');
        base := _pg_sync.base_type(typ);
        IF base NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'int8'::regtype,
                        'numeric'::regtype, 'float8'::regtype) THEN
            RAISE EXCEPTION 'timestamp column "%" of table "%" has type %', col, table_name, typ
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use timestamptz, timestamp, or a number of epoch milliseconds.';
        END IF;
        out := out || jsonb_build_object('timestamp_column', col);
    END IF;

    IF conflict_policy = 'version' THEN
        col := coalesce(options->>'version_column', 'version');
        typ := _pg_sync.column_type(table_name, col, 'version column');
        IF _pg_sync.base_type(typ) NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
            RAISE EXCEPTION 'version column "%" of table "%" has type %', col, table_name, typ
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an integer column.';
        END IF;
        IF col IN (key_column, owner_column) THEN
            RAISE EXCEPTION 'the version column of table "%" cannot be its key or owner column', table_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF coalesce(options->>'on_conflict', 'abort') NOT IN ('abort', 'server_wins', 'client_wins', 'manual') THEN
            RAISE EXCEPTION 'option "on_conflict" must be abort, server_wins, client_wins or manual'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        out := out || jsonb_build_object('version_column', col,
                                         'on_conflict', coalesce(options->>'on_conflict', 'abort'));
    END IF;

    IF conflict_policy = 'merge' THEN
        rules := coalesce(options->'columns', '{}');
        IF coalesce(options->>'default', 'client') NOT IN ('client', 'server', 'latest', 'max', 'min') THEN
            RAISE EXCEPTION 'option "default" must be client, server, latest, max or min'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR col, rule IN SELECT r.key, r.value #>> '{}' FROM jsonb_each(rules) r LOOP
            IF rule IS NULL OR rule NOT IN ('client', 'server', 'latest', 'max', 'min', 'union', 'append_by_id') THEN
                RAISE EXCEPTION 'unknown merge rule "%" for column "%"', rule, col
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Rules: client, server, latest, max, min, union, append_by_id.';
            END IF;
            typ := _pg_sync.column_type(table_name, col, 'column');
            IF col IN (key_column, owner_column) THEN
                RAISE EXCEPTION 'the key and owner columns of table "%" are not merged', table_name
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            base := _pg_sync.base_type(typ);
            IF rule = 'union' AND NOT (base IN ('json'::regtype, 'jsonb'::regtype)
                                       OR (SELECT t.typcategory = 'A' FROM pg_type t WHERE t.oid = base)) THEN
                RAISE EXCEPTION 'merge rule union needs an array or JSON column; "%" has type %', col, typ
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF rule = 'append_by_id' AND base NOT IN ('json'::regtype, 'jsonb'::regtype) THEN
                RAISE EXCEPTION 'merge rule append_by_id needs a JSON column; "%" has type %', col, typ
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF rule IN ('max', 'min') AND NOT EXISTS (
                SELECT FROM pg_opclass o JOIN pg_am a ON a.oid = o.opcmethod
                 WHERE a.amname = 'btree' AND o.opcdefault AND o.opcintype IN (base, 'anyarray'::regtype, 'anyenum'::regtype)) THEN
                RAISE EXCEPTION 'merge rule % needs an ordered type; "%" has type %', rule, col, typ
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
        out := out || jsonb_build_object('columns', rules, 'default', coalesce(options->>'default', 'client'));
    END IF;

    IF conflict_policy = 'custom' THEN
        IF jsonb_typeof(options->'function') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'conflict policy custom needs option "function", the name of a function (table_name text, server jsonb, client jsonb) returning jsonb'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        fn := to_regprocedure(format('%s(text, jsonb, jsonb)', options->>'function'));
        IF fn IS NULL THEN
            RAISE EXCEPTION 'function %(text, jsonb, jsonb) does not exist', options->>'function'
                USING ERRCODE = 'undefined_function',
                      HINT = 'Name it schema-qualified, e.g. "public.my_rule".';
        END IF;
        IF (SELECT p.prorettype FROM pg_proc p WHERE p.oid = fn) <> 'jsonb'::regtype
           OR (SELECT p.proretset FROM pg_proc p WHERE p.oid = fn) THEN
            RAISE EXCEPTION 'function % must return jsonb', fn
                USING ERRCODE = 'undefined_function';
        END IF;
        out := out || jsonb_build_object('function', fn::oid::text);
    END IF;
    RETURN out;
END
$$;

-- The type of a column of a table (42703 when there is none).
CREATE FUNCTION _pg_sync.column_type(table_name regclass, col text, what text) RETURNS regtype
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
BEGIN
    SELECT a.atttypid INTO typ FROM pg_attribute a
     WHERE a.attrelid = table_name AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION '% "%" of table "%" does not exist', what, col, table_name USING ERRCODE = 'undefined_column';
    END IF;
    RETURN typ;
END
$$;

-- A domain's base type (the type itself otherwise).
CREATE FUNCTION _pg_sync.base_type(typ regtype) RETURNS regtype
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE b(t) AS (SELECT typ::oid
                            UNION ALL
                            SELECT p.typbasetype FROM pg_type p, b WHERE p.oid = b.t AND p.typtype = 'd')
    SELECT t::regtype FROM b, pg_type p WHERE p.oid = b.t AND p.typtype <> 'd'
$$;

-- The trigger of the version policy: +1 on every write, 1 on the first.
CREATE FUNCTION _pg_sync.bump_version() RETURNS trigger
    AS 'MODULE_PATHNAME', 'sync_bump_version' LANGUAGE C;

-- Installs (or removes, column NULL) the version trigger of a table.
CREATE FUNCTION _pg_sync.set_version_trigger(table_name regclass, col text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_trigger g WHERE g.tgrelid = table_name AND g.tgname = 'pg_sync_version') THEN
        EXECUTE format('DROP TRIGGER pg_sync_version ON %s', table_name);
    END IF;
    IF col IS NOT NULL THEN
        EXECUTE format('CREATE TRIGGER pg_sync_version BEFORE INSERT OR UPDATE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION _pg_sync.bump_version(%L)', table_name, col);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION sync_register_table(table_name regclass,
                                    owner_column name DEFAULT NULL,
                                    conflict_policy text DEFAULT 'abort',
                                    options jsonb DEFAULT '{}')
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel       pg_class%ROWTYPE;
    nsp       name;
    keycol    name;
    keytype   regtype;
    basetype  regtype;
    nkeys     integer;
    client    text;
BEGIN
    IF table_name IS NULL THEN
        RAISE EXCEPTION 'table_name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO rel FROM pg_class WHERE oid = table_name;
    SELECT nspname INTO nsp FROM pg_namespace WHERE oid = rel.relnamespace;
    IF rel.relkind = 'p' THEN
        RAISE EXCEPTION 'partitioned table "%" cannot be synced', table_name
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Register a plain table.';
    END IF;
    IF rel.relkind <> 'r' THEN
        RAISE EXCEPTION '"%" is not a table', table_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.relpersistence = 't' THEN
        RAISE EXCEPTION 'temporary table "%" cannot be synced', table_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_has_role(_pg_sync.calling_role(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', table_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM _pg_sync.tables t WHERE t.relid = table_name) THEN
        RAISE EXCEPTION 'table "%" is already registered', table_name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Call sync_unregister_table() first to change its configuration.';
    END IF;

    -- a single-column primary key of a type whose values travel as strings
    SELECT count(*) INTO nkeys
      FROM pg_constraint c, unnest(c.conkey) k
     WHERE c.conrelid = table_name AND c.contype = 'p';
    IF nkeys <> 1 THEN
        RAISE EXCEPTION 'table "%" needs a single-column primary key to be synced', table_name
            USING ERRCODE = 'invalid_table_definition',
                  DETAIL = CASE WHEN nkeys = 0 THEN 'The table has no primary key.'
                                ELSE format('Its primary key has %s columns.', nkeys) END;
    END IF;
    SELECT a.attname, a.atttypid::regtype INTO keycol, keytype
      FROM pg_constraint c JOIN pg_attribute a
        ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
     WHERE c.conrelid = table_name AND c.contype = 'p';
    basetype := keytype;
    WHILE (SELECT typtype FROM pg_type WHERE oid = basetype) = 'd' LOOP
        basetype := (SELECT typbasetype FROM pg_type WHERE oid = basetype);
    END LOOP;
    IF basetype NOT IN ('text'::regtype, 'varchar'::regtype, 'uuid'::regtype,
                        'int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
        RAISE EXCEPTION 'primary key column "%" of table "%" has type %, which cannot be synced',
                        keycol, table_name, keytype
            USING ERRCODE = 'invalid_table_definition',
                  HINT = 'Use text, varchar, uuid or an integer type for the key.';
    END IF;

    IF owner_column IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_attribute a
         WHERE a.attrelid = table_name AND a.attname = owner_column
           AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', owner_column, table_name
            USING ERRCODE = 'undefined_column';
    END IF;
    IF owner_column = keycol THEN
        RAISE EXCEPTION 'the owner column of table "%" cannot be its primary key', table_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    options := _pg_sync.check_options(table_name, keycol, owner_column, conflict_policy, options);

    client := coalesce(options->>'name', rel.relname);
    IF EXISTS (SELECT 1 FROM _pg_sync.tables t WHERE t.name = client) THEN
        RAISE EXCEPTION 'another registered table is already synced as "%"', client
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Give one of them another client name with options => ''{"name": "..."}''.';
    END IF;

    INSERT INTO _pg_sync.tables (relid, name, key_column, owner_column, conflict_policy, options)
    VALUES (table_name, client, keycol, owner_column, conflict_policy, options);
    PERFORM _pg_sync.set_version_trigger(table_name, options->>'version_column');

    -- statement triggers: one set-based record per statement, from its transition tables
    EXECUTE format('CREATE TRIGGER pg_sync_capture_insert AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS pg_sync_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION _pg_sync.capture()', table_name);
    EXECUTE format('CREATE TRIGGER pg_sync_capture_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS pg_sync_old NEW TABLE AS pg_sync_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION _pg_sync.capture()', table_name);
    EXECUTE format('CREATE TRIGGER pg_sync_capture_delete AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS pg_sync_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION _pg_sync.capture()', table_name);
    EXECUTE format('CREATE TRIGGER pg_sync_capture_truncate BEFORE TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION _pg_sync.capture_truncate()', table_name);
    PERFORM _pg_sync.invalidate(table_name);
END
$$;
COMMENT ON FUNCTION sync_register_table(regclass, name, text, jsonb) IS
    'starts syncing a table';

CREATE OR REPLACE FUNCTION sync_unregister_table(table_name regclass) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tid integer;
BEGIN
    IF table_name IS NULL THEN
        RAISE EXCEPTION 'table_name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT t.table_id INTO tid FROM _pg_sync.tables t WHERE t.relid = table_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not registered', table_name
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(_pg_sync.calling_role(), (SELECT relowner FROM pg_class WHERE oid = table_name), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', table_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS pg_sync_capture_insert ON %s', table_name);
    EXECUTE format('DROP TRIGGER IF EXISTS pg_sync_capture_update ON %s', table_name);
    EXECUTE format('DROP TRIGGER IF EXISTS pg_sync_capture_delete ON %s', table_name);
    EXECUTE format('DROP TRIGGER IF EXISTS pg_sync_capture_truncate ON %s', table_name);
    PERFORM _pg_sync.set_version_trigger(table_name, NULL);
    DELETE FROM _pg_sync.conflicts k WHERE k.table_id = tid;
    DELETE FROM _pg_sync.row_meta m WHERE m.table_id = tid;
    DELETE FROM _pg_sync.tables t WHERE t.relid = table_name;
    PERFORM _pg_sync.invalidate(table_name);
END
$$;
COMMENT ON FUNCTION sync_unregister_table(regclass) IS
    'stops syncing a table and forgets its change history';

-- A dropped table stops being synced: its registration and history go with it.
CREATE OR REPLACE FUNCTION _pg_sync.forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid;
BEGIN
    FOR dropped IN SELECT objid FROM pg_event_trigger_dropped_objects()
                    WHERE classid = 'pg_class'::regclass AND objsubid = 0 LOOP
        DELETE FROM _pg_sync.row_meta m
         USING _pg_sync.tables t
         WHERE t.relid = dropped AND m.table_id = t.table_id;
        DELETE FROM _pg_sync.conflicts k
         USING _pg_sync.tables t
         WHERE t.relid = dropped AND k.table_id = t.table_id;
        DELETE FROM _pg_sync.tables t WHERE t.relid = dropped;
    END LOOP;
END
$$;
-- sync_pull, sync_push and sync_prune change their signatures (new
-- parameters, new result columns): they are created again, and keep the
-- EXECUTE privileges granted or revoked on them.
CREATE TABLE _pg_sync.upgrade_acl (fn text PRIMARY KEY, acl aclitem[]);
INSERT INTO _pg_sync.upgrade_acl
SELECT p.oid::regprocedure::text, p.proacl FROM pg_catalog.pg_proc p
 WHERE p.oid IN ('sync_pull(bigint, integer, jsonb, text)'::regprocedure,
                 'sync_push(json, bigint, text)'::regprocedure,
                 'sync_prune(interval)'::regprocedure);
CREATE FUNCTION _pg_sync.grant_like(old text, fn regprocedure) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    acl aclitem[] := (SELECT u.acl FROM _pg_sync.upgrade_acl u WHERE u.fn = old);
    g oid;
BEGIN
    IF acl IS NULL THEN
        RETURN;     -- the default: PUBLIC may execute, as it may the new one
    END IF;
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    FOR g IN SELECT a.grantee FROM aclexplode(acl) a WHERE a.privilege_type = 'EXECUTE' LOOP
        IF g = 0 THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', fn);
        ELSE
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, (SELECT r.rolname FROM pg_roles r WHERE r.oid = g));
        END IF;
    END LOOP;
END
$$;
DROP FUNCTION sync_pull(bigint, integer, jsonb, text);
DROP FUNCTION sync_push(json, bigint, text);
DROP FUNCTION sync_prune(interval);

CREATE FUNCTION sync_pull(last_pulled_at bigint DEFAULT NULL,
                          schema_version integer DEFAULT NULL,
                          migration jsonb DEFAULT NULL,
                          user_id text DEFAULT NULL,
                          client_id text DEFAULT NULL,
                          page_size integer DEFAULT NULL,
                          replacement_ok boolean DEFAULT false)
    RETURNS json
    AS 'MODULE_PATHNAME', 'sync_pull' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_pull(bigint, integer, jsonb, text, text, integer, boolean) IS
    'changes since a token, as a WatermelonDB pull result';

CREATE FUNCTION sync_push(changes json, last_pulled_at bigint, user_id text DEFAULT NULL,
                          client_id text DEFAULT NULL, push_id text DEFAULT NULL)
    RETURNS json
    AS 'MODULE_PATHNAME', 'sync_push' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_push(json, bigint, text, text, text) IS
    'applies a WatermelonDB changes document in one transaction';

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
CREATE FUNCTION sync_prune(retain interval DEFAULT interval '30 days')
    RETURNS TABLE (checkpoints bigint, row_changes bigint, pushes bigint, clients bigint)
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
    pushes := 0;
    clients := 0;
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
    -- pages of paged pulls: as long as the tokens they stand for (their ids
    -- then answer SY002 like removed checkpoints)
    WITH gone AS (
        DELETE FROM _pg_sync.pages g
         USING (SELECT r.ctid FROM _pg_sync.pages r
                 WHERE r.created_at < now() - retain FOR UPDATE SKIP LOCKED) old
         WHERE g.ctid = old.ctid
        RETURNING g.id, pg_snapshot_xmin(coalesce(g.prev_snap, g.base_snap)) AS xmin)
    SELECT checkpoints + count(*), greatest(gone_max, max(gone.id)), least(gone_xmin, min(gone.xmin))
      INTO checkpoints, gone_max, gone_xmin FROM gone;
    IF checkpoints > 0 THEN
        UPDATE _pg_sync.state SET pruned_max = greatest(pruned_max, gone_max);
        INSERT INTO _pg_sync.prunes (xid, min_xmin) VALUES (pg_current_xact_id(), gone_xmin);
    END IF;

    -- runs every transaction has seen commit protect nothing any more
    running := _pg_sync.oldest_xmin();
    DELETE FROM _pg_sync.prunes p WHERE p.xid < running;
    -- (a page's pull still reads the changes between its two snapshots)
    horizon := least(running,
                     (SELECT min(pg_snapshot_xmin(c.snap)) FROM _pg_sync.checkpoints c),
                     (SELECT min(p.min_xmin) FROM _pg_sync.prunes p),
                     (SELECT min(pg_snapshot_xmin(coalesce(g.prev_snap, g.base_snap))) FROM _pg_sync.pages g));

    WITH gone AS (
        DELETE FROM _pg_sync.row_meta m
         USING (SELECT r.ctid FROM _pg_sync.row_meta r
                 WHERE r.deleted AND r.xid < horizon
                   FOR UPDATE SKIP LOCKED) old
         WHERE m.ctid = old.ctid
        RETURNING 1)
    SELECT count(*) INTO row_changes FROM gone;

    -- the push ledger and devices not seen for longer than the retention
    -- (a device that comes back is simply new; a push retried after that
    -- long is applied again)
    WITH gone AS (
        DELETE FROM _pg_sync.push_ledger l
         USING (SELECT r.ctid FROM _pg_sync.push_ledger r
                 WHERE r.created_at < now() - retain FOR UPDATE SKIP LOCKED) old
         WHERE l.ctid = old.ctid
        RETURNING 1)
    SELECT count(*) INTO pushes FROM gone;
    WITH gone AS (
        DELETE FROM _pg_sync.clients c
         USING (SELECT r.ctid FROM _pg_sync.clients r
                  LEFT JOIN _pg_sync.client_pulls p ON p.user_id = r.user_id AND p.client_id = r.client_id
                 WHERE greatest(r.first_seen, p.last_pull_at, r.last_push_at) < now() - retain
                   AND r.active     -- a deactivated device stays refused
                   FOR UPDATE OF r SKIP LOCKED) old
         WHERE c.ctid = old.ctid
        RETURNING c.user_id, c.client_id)
    , pulls AS (
        DELETE FROM _pg_sync.client_pulls p USING gone
         WHERE p.user_id = gone.user_id AND p.client_id = gone.client_id)
    SELECT count(*) INTO clients FROM gone;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION sync_prune(interval) IS
    'drops checkpoints, push ledger entries and devices older than the retention period, and the tombstones no token can need';

SELECT _pg_sync.grant_like('sync_pull(bigint,integer,jsonb,text)', 'sync_pull(bigint, integer, jsonb, text, text, integer, boolean)');
SELECT _pg_sync.grant_like('sync_push(json,bigint,text)', 'sync_push(json, bigint, text, text, text)');
SELECT _pg_sync.grant_like('sync_prune(interval)', 'sync_prune(interval)');
DROP FUNCTION _pg_sync.grant_like(text, regprocedure);
DROP TABLE _pg_sync.upgrade_acl;

-- The conflict inbox of the manual policy: a conflict waits here until the
-- user picks a side (sync_resolve_conflict).
CREATE FUNCTION _pg_sync.scope(regclass) RETURNS text
    AS 'MODULE_PATHNAME', 'sync_scope' LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION sync_conflicts()
    RETURNS TABLE (conflict_id bigint, table_name text, record_id text, client_record json,
                   server_record json, created_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.conflict_id, t.name, k.record_id, k.client_record, k.server_record, k.created_at
      FROM _pg_sync.conflicts k JOIN _pg_sync.tables t ON t.table_id = k.table_id
     WHERE k.resolved_at IS NULL
       AND CASE WHEN t.owner_column IS NULL THEN k.user_id = _pg_sync.caller()
                ELSE k.owner = _pg_sync.scope(t.relid) END
     ORDER BY k.conflict_id
$$;
COMMENT ON FUNCTION sync_conflicts() IS 'the calling user''s open conflicts of manual policies';

CREATE FUNCTION sync_resolve_conflict(conflict_id bigint, resolution text, merged json DEFAULT NULL)
    RETURNS json
    AS 'MODULE_PATHNAME', 'sync_resolve_conflict' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve_conflict(bigint, text, json) IS
    'closes an open conflict with the server''s row, the client''s record or a merged one, written as a new change';

-- Changes a table's conflict policy and options (NULL: keep them) without
-- touching its change history or the tokens clients hold.
CREATE FUNCTION sync_alter_table(table_name regclass, conflict_policy text DEFAULT NULL,
                                 options jsonb DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg     _pg_sync.tables%ROWTYPE;
    policy  text;
    opts    jsonb;
BEGIN
    IF table_name IS NULL THEN
        RAISE EXCEPTION 'table_name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO reg FROM _pg_sync.tables t WHERE t.relid = table_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not registered', table_name USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(_pg_sync.calling_role(), (SELECT relowner FROM pg_class WHERE oid = table_name), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', table_name USING ERRCODE = 'insufficient_privilege';
    END IF;
    policy := coalesce(conflict_policy, reg.conflict_policy);
    -- options NULL keeps them: all of them under the same policy, those of
    -- every policy (name, pull_only, push_mode) under a new one; options
    -- given replace them
    IF options IS NOT NULL THEN
        opts := options;
    ELSIF policy = reg.conflict_policy THEN
        opts := reg.options;
    ELSE
        opts := reg.options - ARRAY['timestamp_column', 'version_column', 'on_conflict',
                                    'columns', 'default', 'function'];
    END IF;
    IF options ? 'name' AND options->'name' IS DISTINCT FROM to_jsonb(reg.name) THEN
        RAISE EXCEPTION 'the client name of table "%" cannot change', table_name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Unregister the table and register it again under the new name.';
    END IF;
    opts := opts - 'name';
    IF reg.options ? 'name' THEN
        opts := opts || jsonb_build_object('name', reg.options->'name');
    END IF;
    IF policy = 'custom' AND options IS NULL THEN
        -- the stored function is an oid: keep it, by name
        opts := opts || jsonb_build_object('function',
            (SELECT format('%I.%I', n.nspname, p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE p.oid = (reg.options->>'function')::oid));
    END IF;
    opts := _pg_sync.check_options(table_name, reg.key_column, reg.owner_column, policy, opts);
    UPDATE _pg_sync.tables t SET conflict_policy = policy, options = opts WHERE t.relid = table_name;
    PERFORM _pg_sync.set_version_trigger(table_name, opts->>'version_column');
    PERFORM _pg_sync.invalidate(table_name);
END
$$;
COMMENT ON FUNCTION sync_alter_table(regclass, text, jsonb) IS
    'changes a synced table''s conflict policy and options, keeping its history and tokens';
REVOKE ALL ON FUNCTION sync_alter_table(regclass, text, jsonb) FROM PUBLIC;

-- Clients whose token is older than now get the table anew: by replacement
-- when they pull with replacement_ok (rows they have that are not sent are
-- removed on the device), else whole. For access the server cannot follow
-- row by row (a row-level security policy that reads another table).
CREATE FUNCTION sync_require_replacement(table_name regclass) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF table_name IS NULL THEN
        RAISE EXCEPTION 'table_name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM _pg_sync.tables t WHERE t.relid = table_name) THEN
        RAISE EXCEPTION 'table "%" is not registered', table_name USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(_pg_sync.calling_role(), (SELECT relowner FROM pg_class WHERE oid = table_name), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', table_name USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE _pg_sync.tables t SET replaced_xid = pg_current_xact_id() WHERE t.relid = table_name;
END
$$;
COMMENT ON FUNCTION sync_require_replacement(regclass) IS
    'makes every client that has not pulled since get the table anew (by replacement when it allows it)';
REVOKE ALL ON FUNCTION sync_require_replacement(regclass) FROM PUBLIC;

-- Realtime hints: which of the given users have changes in scope that a
-- snapshot did not see. For a server that holds many clients' connections
-- and polls for all of them in one call (the edge function's /sync/events).
CREATE FUNCTION sync_changed_users(since text, user_ids text[])
    RETURNS json
    AS 'MODULE_PATHNAME', 'sync_changed_users' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_changed_users(text, text[]) IS
    'the users among user_ids with changes since a position, and the position to ask from next';
REVOKE ALL ON FUNCTION sync_changed_users(text, text[]) FROM PUBLIC;

-- Devices: per user and client_id (the device's own id), what pulls and
-- pushes that name it recorded. user_id '' is a device of callers with no
-- user id.
CREATE TABLE _pg_sync.clients (
    user_id        text NOT NULL,
    client_id      text NOT NULL,
    first_seen     timestamptz NOT NULL DEFAULT now(),
    last_push_at   timestamptz,
    pushes         bigint NOT NULL DEFAULT 0,
    records_pushed bigint NOT NULL DEFAULT 0,
    conflicts      bigint NOT NULL DEFAULT 0,   -- records a conflict policy settled
    rejected       bigint NOT NULL DEFAULT 0,   -- records listed in experimentalRejectedIds
    per_table      jsonb NOT NULL DEFAULT '{}', -- {"<table_id>": {"pushes", "records", "rejected", "conflicts"}}
    active         boolean NOT NULL DEFAULT true,
    info           jsonb,
    PRIMARY KEY (user_id, client_id)
);

-- The last pull of each device: when, and the token it returned. Written
-- by every pull whose token changed, so kept unlogged: a pull that records
-- nothing else commits without waiting for a WAL flush. Lost in a crash
-- (devices show no last pull until they pull again); a hot standby has none.
CREATE UNLOGGED TABLE _pg_sync.client_pulls (
    user_id      text NOT NULL,
    client_id    text NOT NULL,
    last_pull_at timestamptz NOT NULL,
    last_token   bigint NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- The push ledger: a push carrying a push_id, applied once. client_id ''
-- when the push named no device.
CREATE TABLE _pg_sync.push_ledger (
    user_id      text NOT NULL,
    client_id    text NOT NULL,
    push_id      text NOT NULL,
    payload_hash bytea NOT NULL,        -- sha256 of the changes document
    result       json,                  -- what the push answered
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_id, push_id)
);
CREATE INDEX push_ledger_created ON _pg_sync.push_ledger (created_at);

-- per-table counters of a device, added up
CREATE FUNCTION _pg_sync.add_counts(a jsonb, b jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(k, (
               SELECT jsonb_object_agg(f, coalesce((a -> k ->> f)::bigint, 0) + coalesce((b -> k ->> f)::bigint, 0))
                 FROM unnest(ARRAY['pushes', 'records', 'rejected', 'conflicts']) f)), '{}')
      FROM (SELECT jsonb_object_keys(a) UNION SELECT jsonb_object_keys(b)) AS ks(k)
$$;

CREATE FUNCTION _pg_sync.caller() RETURNS text
    AS 'MODULE_PATHNAME', 'sync_caller' LANGUAGE C VOLATILE;

CREATE FUNCTION sync_clients()
    RETURNS TABLE (client_id text, first_seen timestamptz, last_pull_at timestamptz,
                   last_push_at timestamptz, last_token bigint, pushes bigint,
                   records_pushed bigint, conflicts bigint, active boolean, info jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_is_in_recovery() THEN
        -- (a standby has no record of pulls)
        RETURN QUERY
        SELECT c.client_id, c.first_seen, NULL::timestamptz, c.last_push_at, NULL::bigint, c.pushes,
               c.records_pushed, c.conflicts, c.active, c.info
          FROM _pg_sync.clients c
         WHERE c.user_id = _pg_sync.caller()
         ORDER BY c.client_id;
    ELSE
        RETURN QUERY
        SELECT c.client_id, c.first_seen, p.last_pull_at, c.last_push_at, p.last_token, c.pushes,
               c.records_pushed, c.conflicts, c.active, c.info
          FROM _pg_sync.clients c
          LEFT JOIN _pg_sync.client_pulls p ON p.user_id = c.user_id AND p.client_id = c.client_id
         WHERE c.user_id = _pg_sync.caller()
         ORDER BY c.client_id;
    END IF;
END
$$;
COMMENT ON FUNCTION sync_clients() IS 'the calling user''s devices';

-- the calling user's device, checked: 22023 for a bad id, 42704 when unknown
CREATE FUNCTION _pg_sync.own_device(client_id text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me text := _pg_sync.caller();
BEGIN
    IF client_id IS NULL OR octet_length(client_id) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'client_id must be 1 to 255 bytes long' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN me;
END
$$;

CREATE FUNCTION sync_client_info(client_id text, info jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me text := _pg_sync.own_device(client_id);
BEGIN
    IF info IS NOT NULL AND (jsonb_typeof(info) <> 'object' OR octet_length(info::text) > 4096) THEN
        RAISE EXCEPTION 'info must be a JSON object of at most 4096 bytes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO _pg_sync.clients AS c (user_id, client_id, info) VALUES (me, client_id, info)
        ON CONFLICT ON CONSTRAINT clients_pkey DO UPDATE SET info = excluded.info;
END
$$;
COMMENT ON FUNCTION sync_client_info(text, jsonb) IS 'sets what a device says of itself (platform, app version)';

CREATE FUNCTION sync_deactivate_client(client_id text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me text := _pg_sync.own_device(client_id);
BEGIN
    UPDATE _pg_sync.clients c SET active = false WHERE c.user_id = me AND c.client_id = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no device "%" of this user', client_id USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION sync_deactivate_client(text) IS
    'blocks a device of the calling user: its pulls and pushes fail with SY005';

CREATE FUNCTION sync_activate_client(client_id text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me text := _pg_sync.own_device(client_id);
BEGIN
    UPDATE _pg_sync.clients c SET active = true WHERE c.user_id = me AND c.client_id = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no device "%" of this user', client_id USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION sync_activate_client(text) IS 'lets a deactivated device of the calling user sync again';

CREATE FUNCTION sync_status(client_id text DEFAULT NULL) RETURNS json
    AS 'MODULE_PATHNAME', 'sync_status' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_status(text) IS
    'the calling user''s sync status: devices, last pull and push, changes a device has not pulled yet';

-- Observability, for monitoring roles (pg_monitor): counts and ids, never
-- row contents.
CREATE VIEW sync_stats_tables AS
SELECT t.name AS table_name,
       t.relid AS relation,
       (SELECT count(*) FROM _pg_sync.row_meta m WHERE m.table_id = t.table_id AND NOT m.deleted) AS rows_tracked,
       (SELECT count(*) FROM _pg_sync.row_meta m WHERE m.table_id = t.table_id AND m.deleted) AS tombstones,
       (SELECT count(*) FROM _pg_sync.row_meta m
         WHERE m.table_id = t.table_id
           AND NOT coalesce(pg_visible_in_snapshot(m.xid, (
                   SELECT k.snap FROM _pg_sync.checkpoints k
                    WHERE k.created_at <= now() - interval '1 hour' ORDER BY k.id DESC LIMIT 1)), false)
       ) AS changes_last_hour,
       (SELECT count(*) FROM _pg_sync.conflicts k
         WHERE k.table_id = t.table_id AND k.resolved_at IS NULL) AS open_conflicts,
       coalesce(sum((c.per_table -> t.table_id::text ->> 'pushes')::bigint), 0)::bigint AS pushes,
       coalesce(sum((c.per_table -> t.table_id::text ->> 'records')::bigint), 0)::bigint AS records_pushed,
       coalesce(sum((c.per_table -> t.table_id::text ->> 'rejected')::bigint), 0)::bigint AS rejected_records,
       coalesce(sum((c.per_table -> t.table_id::text ->> 'conflicts')::bigint), 0)::bigint AS conflicts
  FROM _pg_sync.tables t
  LEFT JOIN _pg_sync.clients c ON c.per_table ? t.table_id::text
 GROUP BY t.table_id, t.name, t.relid;
COMMENT ON VIEW sync_stats_tables IS
    'per synced table: rows tracked, tombstones, changes in the last hour, pushes and rejected records of named devices';

CREATE VIEW sync_stats_clients AS
SELECT c.user_id, c.client_id, c.first_seen,
       greatest(p.last_pull_at, c.last_push_at) AS last_seen,
       (SELECT count(*) FROM _pg_sync.checkpoints k WHERE k.id > p.last_token) AS lag_checkpoints,
       coalesce(extract(epoch FROM now() - (SELECT min(k.created_at) FROM _pg_sync.checkpoints k
                                             WHERE k.id > p.last_token)), 0) AS lag_seconds,
       c.pushes, c.records_pushed, c.conflicts, c.rejected, c.active
  FROM _pg_sync.clients c
  LEFT JOIN _pg_sync.client_pulls p ON p.user_id = c.user_id AND p.client_id = c.client_id;
COMMENT ON VIEW sync_stats_clients IS
    'per device: last seen, how far behind (checkpoints recorded after its token, and since when), pushes, conflicts';

CREATE VIEW sync_stats AS
WITH horizon AS (
    SELECT _pg_sync.oldest_xmin() AS running,
           (SELECT min(pg_snapshot_xmin(k.snap)) FROM _pg_sync.checkpoints k) AS checkpoints,
           (SELECT min(p.min_xmin) FROM _pg_sync.prunes p) AS prune_runs
)
SELECT (SELECT max(k.id) FROM _pg_sync.checkpoints k) AS newest_token,
       (SELECT k.created_at FROM _pg_sync.checkpoints k ORDER BY k.id DESC LIMIT 1) AS newest_token_at,
       (SELECT min(k.id) FROM _pg_sync.checkpoints k) AS oldest_token,
       (SELECT min(k.created_at) FROM _pg_sync.checkpoints k) AS oldest_token_at,
       CASE least(h.running, h.checkpoints, h.prune_runs)
           WHEN h.prune_runs THEN 'a sync_prune run some transaction has not seen commit'
           WHEN h.checkpoints THEN 'the oldest checkpoint'
           ELSE 'the oldest running transaction'
       END AS retention_pinned_by,
       least(h.running, h.checkpoints, h.prune_runs) AS retention_horizon_xid,
       (SELECT count(*) FROM _pg_sync.checkpoints k WHERE k.created_at > now() - interval '1 minute') AS checkpoints_last_minute,
       (SELECT count(*) FROM _pg_sync.clients) AS devices,
       pg_total_relation_size('_pg_sync.row_meta') AS change_records_bytes,
       pg_total_relation_size('_pg_sync.checkpoints') AS checkpoints_bytes,
       pg_total_relation_size('_pg_sync.clients') AS devices_bytes,
       pg_total_relation_size('_pg_sync.push_ledger') AS push_ledger_bytes
  FROM horizon h;
COMMENT ON VIEW sync_stats IS
    'tokens, what holds retention back, checkpoints per minute, sizes of pg_sync''s tables';

REVOKE ALL ON sync_stats_tables, sync_stats_clients, sync_stats FROM PUBLIC;
GRANT SELECT ON sync_stats_tables, sync_stats_clients, sync_stats TO pg_monitor;

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

