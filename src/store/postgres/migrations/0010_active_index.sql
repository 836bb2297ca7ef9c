-- 0010_active_index: one index of running attempts instead of two.
--
-- A claim inserted an entry into both tasks_lease_idx (the rescue's, by
-- lease expiry) and tasks_queue_active_idx (the queue limits' running count,
-- by queue), and index inserts are most of a drain's database time
-- (bench/README.md). tasks_active_idx serves both: the count of a queue's
-- running tasks is a range on its first column, and the rescue, which runs
-- on the leader every few seconds, scans the entries of all running attempts
-- and checks the expiry in the index (0.7 ms for 10 000 running tasks, against
-- 0.3 ms with an index led by the expiry). A drain of 100 000 jobs replayed in
-- SQL (bench/replay_drain.py) took 2.94-3.25 s against 3.24-3.48 s before.
DROP INDEX tasks_queue_active_idx;
DROP INDEX tasks_lease_idx;
CREATE INDEX tasks_active_idx ON tasks (queue, lease_expires_at, id)
  WHERE state IN ('provisioning', 'running') AND deleted_at IS NULL;
