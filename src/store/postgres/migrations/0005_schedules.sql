-- 0005_schedules: recurring tasks. The task template is kept as columns of
-- its own, like a task's. next_run_at is the next occurrence not yet created;
-- firing moves it on with a compare-and-set, and the unique index below makes
-- a second creation of one occurrence impossible even so.

CREATE TABLE schedules (
  id              text        NOT NULL PRIMARY KEY,
  cron            text        NOT NULL,
  timezone        text        NOT NULL,
  task_type       text        NOT NULL,
  runner          text        NOT NULL,
  queue           text        NOT NULL,
  image           text        NOT NULL DEFAULT '',
  command         jsonb       NOT NULL DEFAULT '[]',
  env             jsonb       NOT NULL DEFAULT '{}',
  max_attempts    integer     NOT NULL,
  timeout_s       bigint      NOT NULL,
  labels          jsonb       NOT NULL DEFAULT '{}',
  task_notify_url text,
  overlap         text        NOT NULL CHECK (overlap IN ('allow', 'skip', 'cancel_previous')),
  catch_up        text        NOT NULL CHECK (catch_up IN ('none', 'latest', 'all')),
  notify_url      text,
  paused          boolean     NOT NULL DEFAULT false,
  next_run_at     timestamptz,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL
);

CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE NOT paused;

CREATE UNIQUE INDEX tasks_occurrence_uidx ON tasks (schedule_id, occurrence)
  WHERE schedule_id IS NOT NULL;
