-- 0005_schedules: recurring tasks. The task template is kept as columns of
-- its own, like a task's. next_run_at is the next occurrence not yet created;
-- firing moves it on with a compare-and-set, and the unique index below makes
-- a second creation of one occurrence impossible even so.

CREATE TABLE schedules (
  id              TEXT    NOT NULL PRIMARY KEY,
  cron            TEXT    NOT NULL,
  timezone        TEXT    NOT NULL,
  task_type       TEXT    NOT NULL,
  runner          TEXT    NOT NULL,
  queue           TEXT    NOT NULL,
  image           TEXT    NOT NULL DEFAULT '',
  command         TEXT    NOT NULL DEFAULT '[]',  -- JSON array of strings
  env             TEXT    NOT NULL DEFAULT '{}',  -- JSON object of strings
  max_attempts    INTEGER NOT NULL,
  timeout_s       INTEGER NOT NULL,
  labels          TEXT    NOT NULL DEFAULT '{}',  -- JSON object of strings
  task_notify_url TEXT,
  overlap         TEXT    NOT NULL CHECK (overlap IN ('allow', 'skip', 'cancel_previous')),
  catch_up        TEXT    NOT NULL CHECK (catch_up IN ('none', 'latest', 'all')),
  notify_url      TEXT,
  paused          INTEGER NOT NULL DEFAULT 0,
  next_run_at     INTEGER,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);

CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE paused = 0;

CREATE UNIQUE INDEX tasks_occurrence_uidx ON tasks (schedule_id, occurrence)
  WHERE schedule_id IS NOT NULL;
