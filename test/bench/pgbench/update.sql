-- write overhead: one single-row UPDATE per transaction of @TABLE@ (rows of ordinary users)
\set k random(:heavy + 1, :heavy + :users * :per_user)
UPDATE @TABLE@ SET title = 'Edited note', updated_at = now() WHERE id = bench.note_id(:k);
