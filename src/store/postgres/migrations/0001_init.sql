-- 0001_init: tasks, their history, nodes and the leader lease.
--
-- Runs in the store's schema (search_path), inside the migration runner's
-- transaction. Times are timestamptz (microseconds, like core::Time). Maps
-- and lists are jsonb. Ids compare byte-wise (COLLATE "C"), as everywhere
-- else in sked, so keyset pages and claim order do not depend on the
-- database's locale. A deleted task keeps its row with deleted_at set, so
-- its id stays taken, but every query filters it out.

CREATE TABLE tasks (
  id               text COLLATE "C" NOT NULL PRIMARY KEY,
  type             text        NOT NULL,
  runner           text        NOT NULL,
  queue            text        NOT NULL,
  run_at           timestamptz NOT NULL,
  state            text        NOT NULL CHECK (state IN ('scheduled', 'provisioning', 'running',
                                                         'succeeded', 'failed', 'cancelled')),
  image            text        NOT NULL DEFAULT '',
  command          jsonb       NOT NULL DEFAULT '[]',  -- array of strings
  env              jsonb       NOT NULL DEFAULT '{}',  -- object of strings
  attempt          integer     NOT NULL DEFAULT 0,
  max_attempts     integer     NOT NULL,
  free_attempts    integer     NOT NULL DEFAULT 0,
  timeout_s        bigint      NOT NULL,
  idempotency_key  text,
  labels           jsonb       NOT NULL DEFAULT '{}',  -- object of strings
  notify_url       text,
  schedule_id      text,
  occurrence       timestamptz,
  created_at       timestamptz NOT NULL,
  started_at       timestamptz,
  finished_at      timestamptz,
  instance_id      text,
  result_exit_code integer,                            -- NULL: no result
  result_output    text,
  error            text,
  lease_owner      text,
  lease_expires_at timestamptz,
  handle           text,
  deleted_at       timestamptz
);

-- TaskClaim (FOR UPDATE SKIP LOCKED) and TaskNextRunAt: due scheduled tasks,
-- oldest run_at first.
CREATE INDEX tasks_claim_idx ON tasks (run_at, id)
  WHERE state = 'scheduled' AND deleted_at IS NULL;

-- TaskList: keyset pagination on (run_at, id) in both directions.
CREATE INDEX tasks_list_idx ON tasks (run_at, id) WHERE deleted_at IS NULL;

-- Idempotency: one live task per key. Deleting a task frees its key. Inserts
-- name this index's predicate in ON CONFLICT.
CREATE UNIQUE INDEX tasks_idempotency_key_idx ON tasks (idempotency_key)
  WHERE idempotency_key IS NOT NULL AND deleted_at IS NULL;

-- TaskRescue: attempts whose lease expired.
CREATE INDEX tasks_lease_idx ON tasks (lease_expires_at, id)
  WHERE state IN ('provisioning', 'running') AND deleted_at IS NULL;

CREATE INDEX tasks_schedule_idx ON tasks (schedule_id, occurrence)
  WHERE schedule_id IS NOT NULL AND deleted_at IS NULL;

-- A task's history, in append order (seq). Every event is written while the
-- task's row is locked, so seq order is the order of its changes.
CREATE TABLE task_events (
  seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id     text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  at          timestamptz NOT NULL,
  state       text        NOT NULL,
  attempt     integer     NOT NULL,
  node        text,
  instance_id text,
  message     text        NOT NULL
);

CREATE INDEX task_events_task_idx ON task_events (task_id, seq);

CREATE TABLE nodes (
  id             text COLLATE "C" NOT NULL PRIMARY KEY,
  version        text        NOT NULL,
  started_at     timestamptz NOT NULL,
  last_heartbeat timestamptz NOT NULL
);

-- The single leader lease (river's river_leader): at most one row, named
-- 'default'. Whoever holds it may extend it; anyone may take it once
-- expires_at is before their `now`.
CREATE TABLE leader (
  name       text        NOT NULL PRIMARY KEY CHECK (name = 'default'),
  node       text        NOT NULL,
  elected_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
