-- 0001_init: tasks, their history, nodes and the leader lease.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC (core/time.h).
-- Maps and lists are JSON text. A deleted task keeps its row with deleted_at
-- set, so its id stays taken, but every query filters it out.

CREATE TABLE tasks (
  id               TEXT    NOT NULL PRIMARY KEY,
  type             TEXT    NOT NULL,
  runner           TEXT    NOT NULL,
  queue            TEXT    NOT NULL,
  run_at           INTEGER NOT NULL,
  state            TEXT    NOT NULL CHECK (state IN ('scheduled', 'provisioning', 'running',
                                                     'succeeded', 'failed', 'cancelled')),
  image            TEXT    NOT NULL DEFAULT '',
  command          TEXT    NOT NULL DEFAULT '[]',  -- JSON array of strings
  env              TEXT    NOT NULL DEFAULT '{}',  -- JSON object of strings
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  free_attempts    INTEGER NOT NULL DEFAULT 0,
  timeout_s        INTEGER NOT NULL,
  idempotency_key  TEXT,
  labels           TEXT    NOT NULL DEFAULT '{}',  -- JSON object of strings
  notify_url       TEXT,
  schedule_id      TEXT,
  occurrence       INTEGER,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  instance_id      TEXT,
  result_exit_code INTEGER,                        -- NULL: no result
  result_output    TEXT,
  error            TEXT,
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  handle           TEXT,
  deleted_at       INTEGER
) STRICT;

-- TaskClaim and TaskNextRunAt: due scheduled tasks, oldest run_at first.
CREATE INDEX tasks_claim_idx ON tasks (state, run_at, id)
  WHERE state = 'scheduled' AND deleted_at IS NULL;

-- TaskList: keyset pagination on (run_at, id) in both directions.
CREATE INDEX tasks_list_idx ON tasks (run_at, id) WHERE deleted_at IS NULL;

-- Idempotency: one live task per key. Deleting a task frees its key.
CREATE UNIQUE INDEX tasks_idempotency_key_idx ON tasks (idempotency_key)
  WHERE idempotency_key IS NOT NULL AND deleted_at IS NULL;

-- TaskRescue: attempts whose lease expired.
CREATE INDEX tasks_lease_idx ON tasks (lease_expires_at)
  WHERE state IN ('provisioning', 'running') AND deleted_at IS NULL;

CREATE INDEX tasks_schedule_idx ON tasks (schedule_id, occurrence)
  WHERE schedule_id IS NOT NULL AND deleted_at IS NULL;

-- A task's history, in append order (seq).
CREATE TABLE task_events (
  seq         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  task_id     TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  at          INTEGER NOT NULL,
  state       TEXT    NOT NULL,
  attempt     INTEGER NOT NULL,
  node        TEXT,
  instance_id TEXT,
  message     TEXT    NOT NULL
) STRICT;

CREATE INDEX task_events_task_idx ON task_events (task_id, seq);

CREATE TABLE nodes (
  id             TEXT    NOT NULL PRIMARY KEY,
  version        TEXT    NOT NULL,
  started_at     INTEGER NOT NULL,
  last_heartbeat INTEGER NOT NULL
) STRICT;

-- The single leader lease: at most one row, named 'default'.
CREATE TABLE leader (
  name       TEXT    NOT NULL PRIMARY KEY CHECK (name = 'default'),
  node       TEXT    NOT NULL,
  elected_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
