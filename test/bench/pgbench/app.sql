-- write overhead: an app's transaction on two tables, @NOTES@ and @TASKS@ (a
-- note's checklist): a user adds a note, edits another of its notes, adds a
-- task to that note, ticks one of its tasks and reads the note's tasks back
-- (sql/app.sql: tasks_per_note tasks on each of the user's first task_notes
-- notes)
\set u random(0, :users - 1)
\set m random(0, :task_notes - 1)
\set j random(0, :tasks_per_note - 1)
BEGIN;
INSERT INTO @NOTES@ (id, owner, title, body, done, priority, score, created_at, updated_at)
VALUES ('a' || nextval('bench.wseq'), bench.user_name(:u), 'New note',
        'A note written by the app transaction of the write-overhead test; about one hundred bytes long.',
        false, 3, 1.5, now(), now());
UPDATE @NOTES@ SET title = 'Edited note', updated_at = now()
 WHERE id = bench.user_row_id(:u, :m, :users, :heavy);
INSERT INTO @TASKS@ (id, owner, note_id, title, done, position, created_at, updated_at)
VALUES ('a' || currval('bench.wseq'), bench.user_name(:u), bench.user_row_id(:u, :m, :users, :heavy),
        'New task', false, :tasks_per_note, now(), now());
UPDATE @TASKS@ SET done = NOT done, updated_at = now()
 WHERE id = bench.task_id(:u, :m, :j);
SELECT id, title, done FROM @TASKS@
 WHERE note_id = bench.user_row_id(:u, :m, :users, :heavy) ORDER BY position, id;
COMMIT;
