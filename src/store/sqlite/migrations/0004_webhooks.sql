-- 0004_webhooks: the outbox of task webhooks (notify_url). A trigger queues
-- one delivery in the very transaction that moves a task with a notify_url to
-- a final state, so a webhook is queued exactly once per final state, whoever
-- wrote it. Deliveries are claimed under a lease, fenced by attempt.

CREATE TABLE webhooks (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id          TEXT    NOT NULL,
  url              TEXT    NOT NULL,
  task_state       TEXT    NOT NULL,
  state            TEXT    NOT NULL DEFAULT 'pending'
                           CHECK (state IN ('pending', 'delivered', 'failed')),
  attempt          INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  last_error       TEXT,
  created_at       INTEGER NOT NULL,
  finished_at      INTEGER
);

CREATE INDEX webhooks_due_idx ON webhooks (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX webhooks_task_idx ON webhooks (task_id, id);

CREATE TRIGGER tasks_queue_webhook AFTER UPDATE OF state ON tasks
  WHEN NEW.notify_url IS NOT NULL AND NEW.deleted_at IS NULL
       AND NEW.state IN ('succeeded', 'failed', 'cancelled')
       AND OLD.state IS NOT NEW.state
BEGIN
  INSERT INTO webhooks (task_id, url, task_state, next_attempt_at, created_at)
  VALUES (NEW.id, NEW.notify_url, NEW.state,
          COALESCE(NEW.finished_at, NEW.created_at), COALESCE(NEW.finished_at, NEW.created_at));
END;
