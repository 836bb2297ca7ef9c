-- 0011_task_labels: GET /v1/tasks?label=k:v in run_at order, without
-- walking the history.
--
-- A label filter could only walk tasks_list_idx in run_at order and open each
-- task to test its labels: for a label on 2 % of 10 000 000 tasks, a page of
-- 50 opened about 2 800 rows scattered over the table (p99 16 ms under load,
-- bench/README.md). No index on the jsonb column gives the rows of one pair
-- in run_at order (GIN gives them unordered: every match, then a sort), so
-- each label pair of a live task is also a row here, ordered by pair, then
-- run_at and id as TaskList pages: a page reads the pair's entries in order
-- and opens only the tasks that carry it.
--
-- Triggers keep it in step with tasks, whichever statement writes them: an
-- insert with labels, and an update that moves run_at (a retry, a rescue) or
-- deletes the task. The hot path pays nothing: the claim, the finish and the
-- lease renewal set none of these columns, so PostgreSQL does not even look
-- at the trigger, and a task without labels queues no trigger event.
-- Columns are named label_* so that a join with tasks leaves every task
-- column unambiguous.

CREATE TABLE task_labels (
  label_key    text COLLATE "C" NOT NULL,
  label_value  text COLLATE "C" NOT NULL,
  label_run_at timestamptz NOT NULL,
  task_id      uuid        NOT NULL,
  PRIMARY KEY (label_key, label_value, label_run_at, task_id)
);

-- The triggers' own lookups: a task's rows, to move or remove them.
CREATE INDEX task_labels_task_idx ON task_labels (task_id);

CREATE FUNCTION task_labels_sync() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    DELETE FROM task_labels WHERE task_id = OLD.id;
  END IF;
  IF NEW.deleted_at IS NULL THEN
    INSERT INTO task_labels (label_key, label_value, label_run_at, task_id)
    SELECT key, value, NEW.run_at, NEW.id FROM jsonb_each_text(NEW.labels);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER tasks_labels_insert AFTER INSERT ON tasks
  FOR EACH ROW WHEN (NEW.labels <> '{}'::jsonb)
  EXECUTE FUNCTION task_labels_sync();

CREATE TRIGGER tasks_labels_update AFTER UPDATE OF run_at, labels, deleted_at ON tasks
  FOR EACH ROW WHEN ((OLD.labels <> '{}'::jsonb OR NEW.labels <> '{}'::jsonb)
    AND (OLD.run_at IS DISTINCT FROM NEW.run_at OR OLD.labels IS DISTINCT FROM NEW.labels
         OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at))
  EXECUTE FUNCTION task_labels_sync();

INSERT INTO task_labels (label_key, label_value, label_run_at, task_id)
SELECT kv.key, kv.value, t.run_at, t.id
FROM tasks t, jsonb_each_text(t.labels) kv
WHERE t.deleted_at IS NULL AND t.labels <> '{}'::jsonb;
