-- The app transaction of the write-overhead case (pgbench/app.sql): a second
-- table, tasks (a note's checklist), registered like notes, and its
-- unregistered copy tasks_raw next to notes_raw. The tables exist only
-- while the case runs (registered tables are part of every pull):
-- bench.app_setup() creates, registers and fills them, bench.app_teardown()
-- drops them.
--
-- Data: for each ordinary user, its first task_notes notes (rows 0.. of
-- bench.user_row_id) have tasks_per_note tasks each; the same rows in both
-- tables, loaded in id order like the notes.
\set ON_ERROR_STOP on

-- id of task j (0-based) of the m-th note of ordinary user u
CREATE FUNCTION bench.task_id(u bigint, m bigint, j bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT substr(md5('t' || u || '.' || m || '.' || j), 1, 16) $$;

CREATE FUNCTION bench.app_setup(task_notes int, tasks_per_note int) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    p bench.params;
    n bigint;
BEGIN
    SELECT * INTO p FROM bench.params;
    CREATE TABLE public.tasks (
        id         text PRIMARY KEY,
        owner      text NOT NULL,
        note_id    text NOT NULL,
        title      text NOT NULL,
        done       boolean NOT NULL,
        position   integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX tasks_owner ON public.tasks (owner);
    CREATE INDEX tasks_note ON public.tasks (note_id);
    PERFORM sync_register_table('public.tasks', owner_column => 'owner');
    CREATE TABLE public.tasks_raw (LIKE public.tasks INCLUDING ALL);

    INSERT INTO public.tasks
    SELECT bench.task_id(u, m, j), bench.user_name(u), bench.user_row_id(u, m, p.users, p.heavy),
           'Task ' || j || ' of note ' || m, j % 2 = 0, j,
           timestamptz '2024-01-01 00:00:00+00' + (u * 100 + m * 10 + j) * interval '1 second',
           timestamptz '2024-01-01 00:00:00+00' + (u * 100 + m * 10 + j) * interval '1 second'
      FROM generate_series(0, p.users - 1) AS u,
           generate_series(0, task_notes - 1) AS m,
           generate_series(0, tasks_per_note - 1) AS j
     ORDER BY 1;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO public.tasks_raw SELECT * FROM public.tasks ORDER BY id;
    RETURN n;
END
$$;

CREATE FUNCTION bench.app_teardown() RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    DROP TABLE public.tasks, public.tasks_raw;   -- pg_sync forgets the dropped table
END
$$;
