// The schema of the conflict policy tests (15 to 18): one per-user table per policy, registered
// with it, and the same tables on every device. Load with useStack(POLICY_STACK).
import { ROLES_SQL } from './harness.js'

const SQL = `${ROLES_SQL}
-- server_wins: a record the server changed since the device's token is dropped
CREATE TABLE notes_sw (
    id text PRIMARY KEY, owner_id text NOT NULL, title text, body text,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
SELECT sync_register_table('notes_sw', owner_column => 'owner_id', conflict_policy => 'server_wins');

-- last_write_wins by updated_at (the device's clock; clamped when ahead of the server's)
CREATE TABLE notes_lww (
    id text PRIMARY KEY, owner_id text NOT NULL, title text, body text,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
SELECT sync_register_table('notes_lww', owner_column => 'owner_id', conflict_policy => 'last_write_wins');

-- custom: the progress tracker's rule. The higher progress_percent wins, unless either is 0: then
-- the newer updated_at wins. A deleted side keeps the server's row.
CREATE TABLE lessons (
    id text PRIMARY KEY, owner_id text NOT NULL, title text, progress_percent int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION progress_rule(table_name text, server jsonb, client jsonb) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT CASE
        WHEN server IS NULL OR client IS NULL THEN NULL
        WHEN (server->>'progress_percent')::int = 0 OR (client->>'progress_percent')::int = 0 THEN
            CASE WHEN (client->>'updated_at')::numeric > (server->>'updated_at')::numeric THEN client ELSE server END
        WHEN (client->>'progress_percent')::int > (server->>'progress_percent')::int THEN client
        ELSE server
    END
$$;
SELECT sync_register_table('lessons', owner_column => 'owner_id', conflict_policy => 'custom',
                           options => '{"function": "public.progress_rule"}');

-- merge: completion the highest, last_access the latest (by itself), other columns the device's
CREATE TABLE courses (
    id text PRIMARY KEY, owner_id text NOT NULL, title text, completion int NOT NULL DEFAULT 0,
    last_access timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
SELECT sync_register_table('courses', owner_column => 'owner_id', conflict_policy => 'merge',
                           options => '{"columns": {"completion": "max", "last_access": "latest"},
                                        "timestamp_column": "last_access"}');

-- manual: the server's row stays, the device's record waits in the user's inbox
CREATE TABLE drafts (
    id text PRIMARY KEY, owner_id text NOT NULL, title text, body text,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
SELECT sync_register_table('drafts', owner_column => 'owner_id', conflict_policy => 'manual');

-- insert_only: created once, never changed or deleted by a device
CREATE TABLE answers (
    id text PRIMARY KEY, owner_id text NOT NULL, question text, score int,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
SELECT sync_register_table('answers', owner_column => 'owner_id', conflict_policy => 'insert_only');

GRANT SELECT, INSERT, UPDATE, DELETE ON notes_sw, notes_lww, lessons, courses, drafts, answers TO authenticated;
`

const stamps = { created_at: 'timestamp', updated_at: 'timestamp' }
const note = { owner_id: 'string', title: 'string?', body: 'string?', ...stamps }

export const POLICY_STACK = {
  schemaSql: SQL,
  clientTables: [
    { name: 'notes_sw', owner: 'owner_id', columns: note },
    { name: 'notes_lww', owner: 'owner_id', columns: note },
    { name: 'lessons', owner: 'owner_id', columns: { owner_id: 'string', title: 'string?', progress_percent: 'number', ...stamps } },
    {
      name: 'courses',
      owner: 'owner_id',
      columns: { owner_id: 'string', title: 'string?', completion: 'number', last_access: 'timestamp?', ...stamps },
    },
    { name: 'drafts', owner: 'owner_id', columns: note },
    { name: 'answers', owner: 'owner_id', columns: { owner_id: 'string', question: 'string?', score: 'number?', ...stamps } },
  ],
}

// Sorts a push result's conflicts by table and id, without their conflict ids.
export function conflictsOf(pushResult) {
  return (pushResult?.conflicts ?? [])
    .map(({ conflict_id, ...rest }) => rest)
    .sort((a, b) => (a.table + a.id < b.table + b.id ? -1 : 1))
}
