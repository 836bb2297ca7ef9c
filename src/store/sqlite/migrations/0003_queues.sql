-- 0003_queues: per-queue limits (PUT /v1/queues/{name}), enforced by the
-- claim. bucket_tokens/bucket_at are the rate limit's token bucket (NULL: full),
-- updated by claims under the row's lock.

CREATE TABLE queues (
  name           TEXT NOT NULL PRIMARY KEY,
  max_running    INTEGER,
  max_per_second REAL,
  bucket_tokens  REAL,
  bucket_at      INTEGER,          -- microseconds since the epoch
  updated_at     INTEGER NOT NULL  -- microseconds since the epoch
);

-- Counting a queue's running tasks.
CREATE INDEX tasks_queue_active_idx ON tasks (queue) WHERE state IN ('provisioning', 'running');
