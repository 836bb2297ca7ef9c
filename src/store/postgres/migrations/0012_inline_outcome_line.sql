-- 0012_inline_outcome_line: the history line of an attempt run inside its
-- claim lives on the task's row, not in task_events.
--
-- An attempt that ends as it starts (TaskClaimParams::run_instantly: a
-- built-in no-op) is the task's last change of state: the claim records a
-- final outcome, and a finished task never changes state again. Its one
-- history line was an insert into task_events, with entries in both of its
-- indexes, for each job. A drain of 100 000 no-op jobs replayed in SQL
-- (bench/replay_drain.py --shape in-claim-event / in-claim) took 1.37-1.72 s
-- with it and 1.03-1.05 s without; end to end, two nodes, five pairs of runs
-- alternated, every pair faster, median 47 400 -> 57 400 jobs/s. The claim
-- now keeps that line on the row it writes anyway: its place in the
-- history (a seq drawn from task_events' own sequence, so it sorts among the
-- stored lines exactly as an inserted line would), the node and the message.
-- Its time, state, attempt and instance are the row's finished_at, state,
-- attempt and instance_id, which a finished task keeps. TaskEventList reads
-- the stored lines and this one together, by seq.
--
-- NULL line_seq: the row holds no line. Nullable columns without a default:
-- adding them rewrites nothing.
ALTER TABLE tasks ADD COLUMN line_seq bigint;
ALTER TABLE tasks ADD COLUMN line_node text;
ALTER TABLE tasks ADD COLUMN line_message text;
