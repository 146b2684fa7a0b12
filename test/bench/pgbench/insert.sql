-- write overhead: one single-row INSERT per transaction into @TABLE@
\set u random(0, :users - 1)
INSERT INTO @TABLE@ (id, owner, title, body, done, priority, score, created_at, updated_at)
VALUES ('w' || nextval('bench.wseq'), bench.user_name(:u), 'Written note',
        'A note written by the write-overhead test; its body is about one hundred bytes long, like the rest.',
        false, 7, 2.5, now(), now());
