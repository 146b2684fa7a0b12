-- A small WatermelonDB-style schema: projects per user, tasks per user, and
-- a shared tag list everyone pulls.
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

-- the roles PostgREST and Supabase use
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN;
    END IF;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON projects, tasks TO authenticated;
GRANT SELECT ON tags TO anon, authenticated;

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
