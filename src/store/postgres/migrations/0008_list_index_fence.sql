-- 0008_list_index_fence: the claim can no longer choose tasks_list_idx.
--
-- Both tasks_claim_idx and tasks_list_idx are on (run_at, id), and the
-- claim's conditions implied both predicates. Once statistics said nearly
-- every task was scheduled (a backlog analysed by autovacuum), the planner
-- costed the two the same and took the list index: every claim then walked
-- past every task finished so far, whose entries stay in that index, before
-- it found a scheduled one. A 100 000-job drain replayed in SQL
-- (bench/replay_drain.py) took 14.3-14.5 s on an analysed table against
-- 3.7-3.9 s with the claim index; the walk grows with the history, so it
-- gets worse the longer a backlog drains.
--
-- The list index now also requires `id IS NOT NULL`. Every id is non-null, so
-- the index holds the same rows, but only a query that says so can use it:
-- TaskList does; the claim, TaskNextRunAt and the other scheduled-task
-- lookups do not, which leaves them tasks_claim_idx alone.
CREATE INDEX tasks_list_idx_new ON tasks (run_at, id) WHERE deleted_at IS NULL AND id IS NOT NULL;
DROP INDEX tasks_list_idx;
ALTER INDEX tasks_list_idx_new RENAME TO tasks_list_idx;
