// File: store/postgres/internal/task_columns.h
//
// The select list every statement that returns whole tasks uses, in the order
// PostgresStore's ReadTask() reads it, and how a time travels: as exact
// microseconds since the epoch.
#pragma once

// A timestamptz as microseconds since the epoch; exact, since EXTRACT returns
// numeric (PostgreSQL 14+).
#define SKED_PG_US(expr) "(extract(epoch from " expr ") * 1000000)::int8"

// Every task column, in the order ReadTask() reads them.
#define SKED_PG_TASK_COLUMNS \
  "id, type, runner, queue, " SKED_PG_US("run_at") ", state, image, "        \
  "command::text, env::text, attempt, max_attempts, free_attempts, "         \
  "timeout_s, idempotency_key, labels::text, notify_url, schedule_id, "      \
  SKED_PG_US("occurrence") ", " SKED_PG_US("created_at") ", "                \
  SKED_PG_US("started_at") ", " SKED_PG_US("finished_at") ", instance_id, "  \
  "result_exit_code, result_output, error, lease_owner, "                    \
  SKED_PG_US("lease_expires_at") ", handle"
