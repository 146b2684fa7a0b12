-- make run's schema: projects and tasks per user, and a shared tag list everyone pulls and
-- nobody pushes. Run at every start; safe to run again.
CREATE EXTENSION IF NOT EXISTS pg_sync;

CREATE TABLE IF NOT EXISTS projects (
    id         text PRIMARY KEY,
    owner_id   text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tasks (
    id         text PRIMARY KEY,
    owner_id   text NOT NULL,
    project_id text,
    title      text NOT NULL,
    is_done    boolean NOT NULL DEFAULT false,
    position   double precision,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tags (
    id    text PRIMARY KEY,
    label text NOT NULL
);

-- the roles PostgREST and Supabase use; service_role is trusted server code (it bypasses
-- row-level security and may pass user_id to the sync functions)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN BYPASSRLS;
    END IF;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON projects, tasks TO authenticated;
GRANT SELECT ON tags TO anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON projects, tasks, tags TO service_role;
-- the edge function's GET /sync/events polls sync_changed_users as the role it logs in as, which
-- for make run is the role that loads this file
GRANT EXECUTE ON FUNCTION sync_changed_users(text, text[]) TO CURRENT_USER;

-- Row-level security: the GRANTs above let `authenticated` read and write these tables directly
-- (PostgREST's /rest/v1/tasks, any SQL it may run), where pg_sync's owner scoping does not apply.
-- The policies keep every direct read and write to the caller's own rows, and tags read-only.
ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tags ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS own_rows ON projects;
CREATE POLICY own_rows ON projects TO authenticated
    USING (owner_id = nullif(current_setting('request.jwt.claims', true), '')::json ->> 'sub')
    WITH CHECK (owner_id = nullif(current_setting('request.jwt.claims', true), '')::json ->> 'sub');
DROP POLICY IF EXISTS own_rows ON tasks;
CREATE POLICY own_rows ON tasks TO authenticated
    USING (owner_id = nullif(current_setting('request.jwt.claims', true), '')::json ->> 'sub')
    WITH CHECK (owner_id = nullif(current_setting('request.jwt.claims', true), '')::json ->> 'sub');
DROP POLICY IF EXISTS read_all ON tags;
CREATE POLICY read_all ON tags FOR SELECT TO anon, authenticated USING (true);

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM _pg_sync.tables WHERE name = 'projects') THEN
        PERFORM sync_register_table('projects', owner_column => 'owner_id');
        PERFORM sync_register_table('tasks', owner_column => 'owner_id');
        PERFORM sync_register_table('tags', options => '{"pull_only": true}');
        INSERT INTO tags VALUES ('t-urgent', 'urgent'), ('t-home', 'home');
        INSERT INTO projects (id, owner_id, name) VALUES ('p-demo', 'demo-user', 'Demo project');
        INSERT INTO tasks (id, owner_id, project_id, title)
            VALUES ('task-1', 'demo-user', 'p-demo', 'Try a pull');
    END IF;
END
$$;
