-- The comparison baseline: sync written by hand in PL/pgSQL, the way the
-- Supabase + WatermelonDB tutorial does it. Kept here only to measure
-- pg_sync against it.
--   * the table carries server-side last_modified_at / deleted_at columns,
--     kept by a BEFORE trigger; deletes are soft (deleted_at is set);
--   * pull(last_pulled_at) aggregates the caller's rows modified since the
--     timestamp into jsonb;
--   * push(changes, last_pulled_at) inserts the created records, soft-deletes
--     the deleted ones and updates the updated ones one at a time.
-- Compared with the tutorial it is given every advantage that costs nothing
-- to write: an index on (owner, last_modified_at), the owner and time filter
-- in WHERE (not in FILTER), inlinable SQL helpers instead of PL/pgSQL ones,
-- millisecond (not second) token precision, and a set-based conflict check
-- so that it implements the same protocol as pg_sync.
\set ON_ERROR_STOP on

CREATE FUNCTION bench.timestamp_to_epoch(ts timestamptz) RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM ts) * 1000)::bigint $$;

CREATE FUNCTION bench.epoch_to_timestamp(epoch text) RETURNS timestamptz
    LANGUAGE sql STABLE
    AS $$ SELECT timestamptz 'epoch' + epoch::bigint * interval '1 millisecond' $$;

-- the user id, as Supabase's auth.uid() reads it from the JWT claims
CREATE FUNCTION bench.uid() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub' $$;

CREATE FUNCTION bench.handle_times() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.server_created_at := now();
        NEW.last_modified_at := now();
    ELSIF TG_OP = 'UPDATE' THEN
        NEW.last_modified_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER handle_times BEFORE INSERT OR UPDATE ON notes_pl
    FOR EACH ROW EXECUTE FUNCTION bench.handle_times();

CREATE FUNCTION bench.pull(last_pulled_at bigint DEFAULT 0) RETURNS jsonb
    LANGUAGE plpgsql AS $$
DECLARE
    _ts    timestamptz;
    _uid   text := bench.uid();
    _notes jsonb;
BEGIN
    _ts := to_timestamp(coalesce(last_pulled_at, 0) / 1000.0);
    SELECT jsonb_build_object(
               'created', '[]'::jsonb,
               'updated', coalesce(jsonb_agg(jsonb_build_object(
                              'id', t.id,
                              'owner', t.owner,
                              'title', t.title,
                              'body', t.body,
                              'done', t.done,
                              'priority', t.priority,
                              'score', t.score,
                              'created_at', bench.timestamp_to_epoch(t.created_at),
                              'updated_at', bench.timestamp_to_epoch(t.updated_at)))
                          FILTER (WHERE t.deleted_at IS NULL), '[]'::jsonb),
               'deleted', coalesce(jsonb_agg(to_jsonb(t.id))
                          FILTER (WHERE t.deleted_at IS NOT NULL), '[]'::jsonb))
      INTO _notes
      FROM notes_pl t
     WHERE t.owner = _uid
       AND t.last_modified_at > _ts;
    RETURN jsonb_build_object('changes', jsonb_build_object('notes', _notes),
                              'timestamp', bench.timestamp_to_epoch(now()));
END
$$;

CREATE FUNCTION bench.update_note(_id text, _owner text, _title text, _body text, _done boolean,
                                  _priority integer, _score double precision,
                                  _updated_at timestamptz) RETURNS text
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE notes_pl
       SET owner = _owner, title = _title, body = _body, done = _done,
           priority = _priority, score = _score, updated_at = _updated_at,
           deleted_at = NULL
     WHERE id = _id;
    RETURN _id;
END
$$;

CREATE FUNCTION bench.push(changes jsonb, last_pulled_at bigint) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    _ts          timestamptz := to_timestamp(last_pulled_at / 1000.0);
    updated_note jsonb;
BEGIN
    -- conflict: a pushed record changed on the server after the last pull
    IF EXISTS (SELECT 1
                 FROM notes_pl t
                WHERE t.id IN (SELECT r ->> 'id' FROM jsonb_array_elements(changes -> 'notes' -> 'created') r
                               UNION ALL
                               SELECT r ->> 'id' FROM jsonb_array_elements(changes -> 'notes' -> 'updated') r
                               UNION ALL
                               SELECT jsonb_array_elements_text(changes -> 'notes' -> 'deleted'))
                  AND t.last_modified_at > _ts) THEN
        RAISE EXCEPTION 'push conflict' USING ERRCODE = 'SY001';
    END IF;

    -- created
    INSERT INTO notes_pl (id, owner, title, body, done, priority, score, created_at, updated_at)
    SELECT n ->> 'id', n ->> 'owner', n ->> 'title', n ->> 'body', (n ->> 'done')::boolean,
           (n ->> 'priority')::integer, (n ->> 'score')::double precision,
           bench.epoch_to_timestamp(n ->> 'created_at'), bench.epoch_to_timestamp(n ->> 'updated_at')
      FROM jsonb_array_elements(changes -> 'notes' -> 'created') AS n;

    -- deleted
    WITH changes_data AS (
        SELECT jsonb_array_elements_text(changes -> 'notes' -> 'deleted') AS deleted
    )
    UPDATE notes_pl
       SET deleted_at = now(), last_modified_at = now()
      FROM changes_data
     WHERE notes_pl.id = changes_data.deleted;

    -- updated
    FOR updated_note IN SELECT jsonb_array_elements(changes -> 'notes' -> 'updated') LOOP
        PERFORM bench.update_note(
            updated_note ->> 'id',
            updated_note ->> 'owner',
            updated_note ->> 'title',
            updated_note ->> 'body',
            (updated_note ->> 'done')::boolean,
            (updated_note ->> 'priority')::integer,
            (updated_note ->> 'score')::double precision,
            bench.epoch_to_timestamp(updated_note ->> 'updated_at'));
    END LOOP;
END
$$;
