// File: store/postgres/internal/task_columns.h
//
// The select list every statement that returns whole tasks uses, in the order
// PostgresStore's ReadTask() reads it, and how a time travels: as exact
// microseconds since the epoch.
#pragma once

// A timestamptz as microseconds since the epoch; exact, since EXTRACT returns
// numeric (PostgreSQL 14+).
#define SKED_PG_US(expr) "(extract(epoch from " expr ") * 1000000)::int8"

// What dispatching a task takes (core::TaskClaimParams::run_instantly), and
// whether its outcome queues a webhook (notify_url), in the order
// ReadDispatchFields() reads them: the claim reads no more of the rows it
// locks (claim_sql.h).
#define SKED_PG_DISPATCH_COLUMNS                                                   \
  "id, type, runner, queue, " SKED_PG_US("run_at") ", state, attempt, max_attempts, " \
  "free_attempts, timeout_s, notify_url"

// Every task column, in the order ReadTask() reads them: the dispatch
// columns first.
#define SKED_PG_TASK_COLUMNS                                                     \
  SKED_PG_DISPATCH_COLUMNS ", image, command::text, env::text, idempotency_key, " \
  "labels::text, schedule_id, " SKED_PG_US("occurrence") ", "                      \
  SKED_PG_US("created_at") ", " SKED_PG_US("started_at") ", "                     \
  SKED_PG_US("finished_at") ", instance_id, result_exit_code, result_output, "    \
  "error, lease_owner, " SKED_PG_US("lease_expires_at") ", handle"
