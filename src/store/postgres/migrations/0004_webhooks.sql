-- 0004_webhooks: the outbox of task webhooks (notify_url). A trigger queues
-- one delivery in the very transaction that moves a task with a notify_url to
-- a final state, so a webhook is queued exactly once per final state, whoever
-- wrote it (a node, a callback, a cancel, the rescuer). Nodes claim
-- deliveries like tasks: SKIP LOCKED under a lease, fenced by attempt.

CREATE TABLE webhooks (
  id               bigserial   PRIMARY KEY,
  task_id          text        NOT NULL,
  url              text        NOT NULL,
  task_state       text        NOT NULL,
  state            text        NOT NULL DEFAULT 'pending'
                               CHECK (state IN ('pending', 'delivered', 'failed')),
  attempt          integer     NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL,
  lease_owner      text,
  lease_expires_at timestamptz,
  last_error       text,
  created_at       timestamptz NOT NULL,
  finished_at      timestamptz
);

CREATE INDEX webhooks_due_idx ON webhooks (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX webhooks_task_idx ON webhooks (task_id, id);

-- search_path is fixed at creation, so the trigger finds the outbox of its
-- own schema whatever the writing session's path.
CREATE FUNCTION sked_queue_webhook() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO webhooks (task_id, url, task_state, next_attempt_at, created_at)
  VALUES (NEW.id, NEW.notify_url, NEW.state,
          coalesce(NEW.finished_at, NEW.created_at), coalesce(NEW.finished_at, NEW.created_at));
  RETURN NEW;
END
$$;

CREATE TRIGGER tasks_queue_webhook AFTER UPDATE OF state ON tasks FOR EACH ROW
  WHEN (NEW.notify_url IS NOT NULL AND NEW.deleted_at IS NULL
        AND NEW.state IN ('succeeded', 'failed', 'cancelled')
        AND OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION sked_queue_webhook();
