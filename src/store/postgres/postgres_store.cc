#include "store/postgres/postgres_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/ids.h"
#include "core/task.h"
#include "store/postgres/internal/connection.h"
#include "store/internal/json_columns.h"
#include "store/postgres/internal/listener.h"
#include "store/postgres/internal/migrations.h"
#include "store/postgres/internal/pool.h"
#include "store/postgres/internal/task_columns.h"
#include "store/postgres/internal/task_list_query.h"
#include "store/postgres/internal/async_reader.h"
#include "store/postgres/internal/batch_fence.h"
#include "store/postgres/internal/batcher.h"
#include "store/postgres/internal/claim_sql.h"
#include "store/postgres/internal/thread_annotations.h"

namespace sked::store {
namespace {

using core::Duration;
using core::NodeInfo;
using core::Status;
using core::StatusOr;
using core::Task;
using core::TaskEvent;
using core::TaskState;
using core::Time;
using postgres_internal::ConnectConfig;
using postgres_internal::kClaimLockSql;
using postgres_internal::kClaimWriteAlikeNextSql;
using postgres_internal::kClaimWriteAlikeSql;
using postgres_internal::kClaimWriteSql;
using postgres_internal::Connection;
using postgres_internal::IntArrayLiteral;
using postgres_internal::Listener;
using postgres_internal::Mutex;
using postgres_internal::MutexLock;
using postgres_internal::NullableInt64ArrayLiteral;
using postgres_internal::NullableTextArrayLiteral;
using postgres_internal::Params;
using postgres_internal::Pool;
using postgres_internal::Result;
using postgres_internal::SecondStatement;
using postgres_internal::TextArrayLiteral;

// The channel every node LISTENs on; the payload is the earliest run_at the
// sender made due, in microseconds since the epoch.
#define SKED_PG_DUE_CHANNEL "sked_due"
constexpr char kDueChannel[] = SKED_PG_DUE_CHANNEL;

// How often a transaction that hit a serialization failure or a deadlock
// runs in all.
constexpr int kMaxAttempts = 3;

// --- Row mapping -------------------------------------------------------------

// Doubles travel as text: "%.17g" round-trips exactly.
std::string FormatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::optional<double> OptDouble(const Result& r, int row, int col) {
  std::optional<std::string> text = r.OptText(row, col);
  if (!text.has_value()) return std::nullopt;
  return std::strtod(text->c_str(), nullptr);
}

std::optional<Time> OptTime(const Result& r, int row, int col) {
  std::optional<int64_t> us = r.OptInt(row, col);
  if (!us.has_value()) return std::nullopt;
  return core::TimeFromMicros(*us);
}

StatusOr<TaskState> StateFromText(std::string_view text) {
  std::optional<TaskState> s = core::ParseTaskState(text);
  if (!s.has_value()) return core::InternalError("postgres: stored task has an unknown state");
  return *s;
}

// Decodes row `row` of a result that selected SKED_PG_DISPATCH_COLUMNS
// (task_columns.h): a task with only its dispatch fields.
StatusOr<Task> ReadDispatchFields(const Result& r, int row) {
  Task t;
  t.id = r.Text(row, 0);
  t.type = r.Text(row, 1);
  t.runner = r.Text(row, 2);
  t.queue = r.Text(row, 3);
  t.run_at = core::TimeFromMicros(r.Int(row, 4));
  ASSIGN_OR_RETURN(t.state, StateFromText(r.Text(row, 5)));
  t.attempt = static_cast<int>(r.Int(row, 6));
  t.max_attempts = static_cast<int>(r.Int(row, 7));
  t.free_attempts = static_cast<int>(r.Int(row, 8));
  t.timeout_s = r.Int(row, 9);
  t.notify_url = r.OptText(row, 10);
  return t;
}

// Decodes row `row` of a result that selected SKED_PG_TASK_COLUMNS: the
// dispatch columns, then the rest.
StatusOr<Task> ReadTask(const Result& r, int row) {
  ASSIGN_OR_RETURN(Task t, ReadDispatchFields(r, row));
  t.image = r.Text(row, 11);
  ASSIGN_OR_RETURN(t.command, store_internal::DecodeStringList(r.Text(row, 12)));
  ASSIGN_OR_RETURN(t.env, store_internal::DecodeStringMap(r.Text(row, 13)));
  t.idempotency_key = r.OptText(row, 14);
  ASSIGN_OR_RETURN(t.labels, store_internal::DecodeStringMap(r.Text(row, 15)));
  t.schedule_id = r.OptText(row, 16);
  t.occurrence = OptTime(r, row, 17);
  t.created_at = core::TimeFromMicros(r.Int(row, 18));
  t.started_at = OptTime(r, row, 19);
  t.finished_at = OptTime(r, row, 20);
  t.instance_id = r.OptText(row, 21);
  if (!r.IsNull(row, 22)) {
    t.result = core::TaskResult{.exit_code = static_cast<int>(r.Int(row, 22)),
                                .output = r.OptText(row, 23).value_or("")};
  }
  t.error = r.OptText(row, 24);
  t.lease_owner = r.OptText(row, 25);
  t.lease_expires_at = OptTime(r, row, 26);
  t.handle = r.OptText(row, 27);
  return t;
}

// Every row of `r`, each decoded by `read` (ReadTask: whole tasks).
StatusOr<std::vector<Task>> ReadTasks(const Result& r,
                                      StatusOr<Task> (*read)(const Result&, int) = ReadTask) {
  std::vector<Task> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    ASSIGN_OR_RETURN(Task t, read(r, i));
    out.push_back(std::move(t));
  }
  return out;
}

// Whether every attempt of a claim ended, and ended alike but for its time
// and output: kClaimWriteAlikeSql can then write them all.
bool EndedAlike(const std::vector<std::optional<core::TaskFinishParams>>& outcomes) {
  if (outcomes.empty() || !outcomes.front()) return false;
  const core::TaskFinishParams& first = *outcomes.front();
  auto exit_code = [](const core::TaskFinishParams& o) {
    return o.result ? std::optional<int>(o.result->exit_code) : std::nullopt;
  };
  return std::all_of(outcomes.begin(), outcomes.end(), [&](const auto& o) {
    return o && o->state == first.state && exit_code(*o) == exit_code(first) &&
           o->result.has_value() == first.result.has_value() && o->error == first.error &&
           o->node == first.node && o->message == first.message;
  });
}

// The answer for each of `ids`, in order, from the live tasks read for them.
std::vector<StatusOr<Task>> TasksForIds(StatusOr<std::vector<Task>> found,
                                        const std::vector<std::string>& ids) {
  if (!found.ok()) return std::vector<StatusOr<Task>>(ids.size(), found.status());
  std::vector<StatusOr<Task>> out;
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    auto it = std::find_if(found->begin(), found->end(), [&](const Task& t) { return t.id == id; });
    if (it == found->end()) {
      out.emplace_back(core::NotFoundError("task " + id + " not found"));
    } else {
      out.emplace_back(*it);  // a copy: an id may come more than once
    }
  }
  return out;
}

// --- SQL -----------------------------------------------------------------------

constexpr char kSelectLiveTaskSql[] =
    "SELECT " SKED_PG_TASK_COLUMNS " FROM tasks WHERE id = $1 AND deleted_at IS NULL";
// Concurrent reads of single tasks, answered by one statement (TaskGet).
constexpr char kSelectLiveTasksSql[] =
    "SELECT " SKED_PG_TASK_COLUMNS " FROM tasks WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL";

// TaskGetAsync's statement for a batch of ids, and its answers.
Status SendGetTasks(Connection& conn, const std::vector<std::string>& ids) {
  return conn.Send(kSelectLiveTasksSql, Params().Add(TextArrayLiteral(ids)), "get tasks");
}

std::vector<StatusOr<Task>> FinishGetTasks(StatusOr<Result> r, const std::vector<std::string>& ids) {
  if (!r.ok()) return TasksForIds(r.status(), ids);
  return TasksForIds(ReadTasks(*r), ids);
}

// The row lock makes concurrent changes to one task queue up instead of
// failing their compare-and-set.
constexpr char kSelectLiveTaskForUpdateSql[] =
    "SELECT " SKED_PG_TASK_COLUMNS " FROM tasks WHERE id = $1 AND deleted_at IS NULL FOR UPDATE";

constexpr char kSelectByIdempotencyKeySql[] =
    "SELECT " SKED_PG_TASK_COLUMNS " FROM tasks WHERE idempotency_key = $1 AND deleted_at IS NULL";

// Inserts a task and its "created" event; no row back when a live task holds
// the idempotency key. A taken id fails with a unique violation.
#define SKED_PG_INSERT_TASK_CTE                                           \
  "WITH ins AS ("                                                         \
  " INSERT INTO tasks (id, type, runner, queue, run_at, state, image,"    \
  "  command, env, attempt, max_attempts, free_attempts, timeout_s,"      \
  "  idempotency_key, labels, notify_url, schedule_id, occurrence,"       \
  "  created_at)"                                                         \
  " VALUES ($1, $2, $3, $4, $5::timestamptz, 'scheduled', $6, $7::jsonb," \
  "  $8::jsonb, 0, $9::int, 0, $10::int8, $11, $12::jsonb, $13, $14,"     \
  "  $15::timestamptz, $16::timestamptz)"                                 \
  " ON CONFLICT (idempotency_key)"                                        \
  "  WHERE idempotency_key IS NOT NULL AND deleted_at IS NULL DO NOTHING" \
  " RETURNING id, created_at),"                                           \
  " ev AS ("                                                              \
  " INSERT INTO task_events (task_id, at, state, attempt, message)"       \
  " SELECT id, created_at, 'scheduled', 0, 'created' FROM ins)"

constexpr char kInsertTaskSql[] = SKED_PG_INSERT_TASK_CTE " SELECT id FROM ins";
// The same, waking other nodes in the same statement.
constexpr char kInsertTaskNotifySql[] =
    SKED_PG_INSERT_TASK_CTE " SELECT id, pg_notify('" SKED_PG_DUE_CHANNEL "', $17::text) FROM ins";

constexpr char kNotifySql[] = "SELECT pg_notify('" SKED_PG_DUE_CHANNEL "', $1::text)";

// Microseconds since the epoch (int8) as a timestamptz, exactly: each
// product stays below 2^53, where the interval arithmetic's float8 is exact.
#define SKED_PG_FROM_MICROS(x)                                                \
  "('epoch'::timestamptz + (" x " / 1000000) * interval '1 second'"           \
  " + (" x " % 1000000) * interval '1 microsecond')"

// Many tasks without an idempotency key, their "created" events and one
// wake-up of the other nodes, in one statement: the columns come as arrays,
// one element per task ($16: the earliest run_at to notify, or NULL).
constexpr char kInsertTasksSql[] =
    "WITH u AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],"
    "  $5::int8[], $6::text[], $7::jsonb[], $8::jsonb[], $9::int[], $10::int8[], $11::jsonb[],"
    "  $12::text[], $13::text[], $14::int8[], $15::int8[])"
    " AS u(id, type, runner, queue, run_at_us, image, command, env, max_attempts, timeout_s,"
    "  labels, notify_url, schedule_id, occurrence_us, created_at_us)),"
    " ins AS ("
    " INSERT INTO tasks (id, type, runner, queue, run_at, state, image,"
    "  command, env, attempt, max_attempts, free_attempts, timeout_s,"
    "  idempotency_key, labels, notify_url, schedule_id, occurrence,"
    "  created_at)"
    " SELECT id, type, runner, queue, " SKED_PG_FROM_MICROS("run_at_us") ", 'scheduled', image,"
    "  command, env, 0, max_attempts, 0, timeout_s, NULL, labels, notify_url, schedule_id, "
    SKED_PG_FROM_MICROS("occurrence_us") ", " SKED_PG_FROM_MICROS("created_at_us") " FROM u"
    " RETURNING id, created_at),"
    " ev AS ("
    " INSERT INTO task_events (task_id, at, state, attempt, message)"
    " SELECT id, created_at, 'scheduled', 0, 'created' FROM ins)"
    " SELECT (SELECT count(*) FROM ins),"
    "  (SELECT pg_notify('" SKED_PG_DUE_CHANNEL "', $16::text) WHERE $16::text IS NOT NULL)";

#define SKED_PG_CAS_UPDATE                                                    \
  "UPDATE tasks SET state = $1, run_at = $2::timestamptz, attempt = $3::int," \
  " free_attempts = $4::int, started_at = $5::timestamptz,"                   \
  " finished_at = $6::timestamptz, instance_id = $7,"                         \
  " result_exit_code = $8::int, result_output = $9, error = $10,"             \
  " lease_owner = $11, lease_expires_at = $12::timestamptz, handle = $13"     \
  " WHERE id = $14 AND state = $15 AND attempt = $16::int"                    \
  " AND deleted_at IS NULL"

constexpr char kCasUpdateSql[] = SKED_PG_CAS_UPDATE;
// The update and its event in one statement; rows affected counts events,
// one per updated task.
constexpr char kCasUpdateWithEventSql[] =
    "WITH u AS (" SKED_PG_CAS_UPDATE
    " RETURNING id, state, attempt, instance_id)"
    " INSERT INTO task_events (task_id, at, state, attempt, node, instance_id,"
    " message) SELECT id, $17::timestamptz, state, attempt, $18::text,"
    " instance_id, $19::text FROM u";

constexpr char kAppendEventSql[] =
    "INSERT INTO task_events (task_id, at, state, attempt, node, instance_id,"
    " message) VALUES ($1, $2::timestamptz, $3, $4::int, $5, $6, $7)";

// One statement: lock the due rows no other claimer holds, move them to
// running/provisioning and record the claims. A row another transaction
// claimed meanwhile fails the re-check under the lock and is skipped.
// $7: leave out the queues that have limits (the fast path); $8: take only
// from this queue (NULL: any).
constexpr char kClaimSql[] =
    "WITH c AS ("
    " SELECT id FROM tasks"
    " WHERE state = 'scheduled' AND deleted_at IS NULL"
    " AND run_at <= $1::timestamptz AND runner = ANY($2::text[])"
    " AND (NOT $7::bool OR queue NOT IN (SELECT name FROM queues"
    "  WHERE max_running IS NOT NULL OR max_per_second IS NOT NULL))"
    " AND ($8::text IS NULL OR queue = $8::text)"
    " ORDER BY run_at, id LIMIT $3::int"
    " FOR UPDATE SKIP LOCKED),"
    " u AS ("
    " UPDATE tasks t SET"
    "  state = CASE WHEN t.runner = ANY($4::text[])"
    "   THEN 'provisioning' ELSE 'running' END,"
    "  attempt = t.attempt + 1, lease_owner = $5::text,"
    "  lease_expires_at = $6::timestamptz, started_at = $1::timestamptz,"
    "  handle = NULL"
    " FROM c WHERE t.id = c.id"
    " RETURNING t.*),"
    " e AS ("
    " INSERT INTO task_events (task_id, at, state, attempt, node,"
    "  instance_id, message)"
    " SELECT id, $1::timestamptz, state, attempt, $5::text, instance_id,"
    "  'claimed' FROM u)"
    " SELECT " SKED_PG_TASK_COLUMNS " FROM u ORDER BY run_at, id";

// ORDER BY ... LIMIT 1, not min(): the claim index then yields the first
// row and stops. With min() and no statistics yet the planner read every
// scheduled task (10 000 in the sustained benchmark) on each call, several
// hundred times a second.
constexpr char kNextRunAtSql[] = SKED_PG_NEXT_RUN_AT("$1") " ORDER BY run_at LIMIT 1";

constexpr char kLeaseRenewSql[] =
    "UPDATE tasks t SET lease_expires_at = $1::timestamptz"
    " FROM unnest($2::uuid[], $3::int[]) AS r(id, attempt)"
    " WHERE t.id = r.id AND t.attempt = r.attempt AND t.lease_owner = $4::text"
    " AND " SKED_PG_LIVE_STATE_FENCE
    " RETURNING t.id, t.attempt";

constexpr char kDeleteSql[] =
    "UPDATE tasks SET deleted_at = $1::timestamptz"
    " WHERE id = $2 AND deleted_at IS NULL";

// Expired leases go back to scheduled, or to failed when the lost attempt
// used up max_attempts; the event names the node that lost the lease.
constexpr char kRescueSql[] =
    "WITH x AS ("
    " SELECT id, lease_owner AS old_owner, lease_expires_at AS old_expiry"
    " FROM tasks WHERE state IN ('provisioning', 'running')"
    " AND deleted_at IS NULL AND lease_expires_at < $1::timestamptz"
    " AND (handle IS NULL OR lease_expires_at < $3::timestamptz)"
    " ORDER BY lease_expires_at, id LIMIT $2::int"
    " FOR UPDATE SKIP LOCKED),"
    " u AS ("
    " UPDATE tasks t SET"
    "  state = CASE WHEN t.attempt - t.free_attempts >= t.max_attempts"
    "   THEN 'failed' ELSE 'scheduled' END,"
    "  finished_at = CASE WHEN t.attempt - t.free_attempts >= t.max_attempts"
    "   THEN $1::timestamptz ELSE t.finished_at END,"
    "  error = 'lease expired', lease_owner = NULL, lease_expires_at = NULL"
    " FROM x WHERE t.id = x.id"
    " RETURNING t.*, x.old_owner, x.old_expiry),"
    " e AS ("
    " INSERT INTO task_events (task_id, at, state, attempt, node,"
    "  instance_id, message)"
    " SELECT id, $1::timestamptz, state, attempt, old_owner, instance_id,"
    "  CASE WHEN state = 'failed' THEN 'lease expired; no attempts left'"
    "  ELSE 'lease expired; rescheduled' END FROM u)"
    " SELECT " SKED_PG_TASK_COLUMNS " FROM u ORDER BY old_expiry, id";

// The stored lines and the one a claim kept on the row (line_*: an attempt
// run in its claim, the task's last change of state; its time, state,
// attempt and instance are the finished row's), in seq order. Zero rows: the
// task is absent or deleted. One row with a NULL seq: no events (cannot
// happen for a task created through the store).
constexpr char kEventListSql[] =
    "SELECT h.seq, " SKED_PG_US("h.at")
    ", h.state, h.attempt, h.node, h.instance_id, h.message"
    " FROM tasks t LEFT JOIN LATERAL ("
    "  SELECT e.seq, e.at, e.state, e.attempt, e.node, e.instance_id, e.message"
    "  FROM task_events e WHERE e.task_id = t.id"
    "  UNION ALL"
    "  SELECT t.line_seq, t.finished_at, t.state, t.attempt, t.line_node, t.instance_id,"
    "   t.line_message WHERE t.line_seq IS NOT NULL) h ON true"
    " WHERE t.id = $1 AND t.deleted_at IS NULL ORDER BY h.seq";

constexpr char kCountByStateSql[] =
    "SELECT state, count(*) FROM tasks WHERE deleted_at IS NULL"
    " GROUP BY state";

constexpr char kNodeHeartbeatSql[] =
    "INSERT INTO nodes (id, version, started_at, last_heartbeat, concurrency)"
    " VALUES ($1, $2, $3::timestamptz, $4::timestamptz, $5::int)"
    " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
    " started_at = excluded.started_at,"
    " last_heartbeat = excluded.last_heartbeat, concurrency = excluded.concurrency";

constexpr char kNodePruneSql[] = "DELETE FROM nodes WHERE last_heartbeat < $1::timestamptz";

constexpr char kNodeListSql[] = "SELECT id, version, " SKED_PG_US("started_at") ", " SKED_PG_US(
    "last_heartbeat") ", concurrency FROM nodes ORDER BY id";

// The holder extends its lease; anyone takes a lease that expired before
// `now`. elected_at marks when the current holder took over. A row comes
// back exactly when `node` holds the lease afterwards.
constexpr char kLeaderElectSql[] =
    "INSERT INTO leader AS l (name, node, elected_at, expires_at)"
    " VALUES ('default', $1, $2::timestamptz, $3::timestamptz)"
    " ON CONFLICT (name) DO UPDATE SET node = excluded.node,"
    " elected_at = CASE WHEN l.node = excluded.node"
    "  THEN l.elected_at ELSE excluded.elected_at END,"
    " expires_at = excluded.expires_at"
    " WHERE l.node = excluded.node OR l.expires_at < excluded.elected_at"
    " RETURNING node";

// --- Schedules ---------------------------------------------------------------

#define SKED_PG_SCHEDULE_COLUMNS                                                       \
  "id, cron, timezone, task_type, runner, queue, image, command::text, env::text, "    \
  "max_attempts, timeout_s, labels::text, task_notify_url, overlap, catch_up, "        \
  "notify_url, paused::int, " SKED_PG_US("next_run_at") ", " SKED_PG_US("created_at") \
  ", " SKED_PG_US("updated_at")

constexpr char kScheduleInsertSql[] =
    "INSERT INTO schedules (id, cron, timezone, task_type, runner, queue, image, command, env,"
    " max_attempts, timeout_s, labels, task_notify_url, overlap, catch_up, notify_url, paused,"
    " next_run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb,"
    " $9::jsonb, $10::int, $11::int8, $12::jsonb, $13, $14, $15, $16, $17::bool,"
    " $18::timestamptz, $19::timestamptz, $20::timestamptz)";
constexpr char kScheduleGetSql[] =
    "SELECT " SKED_PG_SCHEDULE_COLUMNS " FROM schedules WHERE id = $1";
constexpr char kScheduleLockSql[] =
    "SELECT " SKED_PG_SCHEDULE_COLUMNS " FROM schedules WHERE id = $1 FOR UPDATE";
constexpr char kScheduleListSql[] =
    "SELECT " SKED_PG_SCHEDULE_COLUMNS " FROM schedules WHERE id > $1 ORDER BY id LIMIT $2::int";
constexpr char kScheduleDeleteSql[] = "DELETE FROM schedules WHERE id = $1";
constexpr char kSchedulePauseSql[] =
    "UPDATE schedules SET paused = $2::bool, next_run_at = $3::timestamptz,"
    " updated_at = $4::timestamptz WHERE id = $1 RETURNING " SKED_PG_SCHEDULE_COLUMNS;
constexpr char kScheduleDueSql[] =
    "SELECT " SKED_PG_SCHEDULE_COLUMNS " FROM schedules WHERE NOT paused"
    " AND next_run_at <= $1::timestamptz ORDER BY next_run_at, id LIMIT $2::int";
constexpr char kScheduleNextSql[] =
    "SELECT " SKED_PG_US("min(next_run_at)") " FROM schedules WHERE NOT paused";
constexpr char kScheduleAdvanceSql[] =
    "UPDATE schedules SET next_run_at = $2::timestamptz, updated_at = $3::timestamptz"
    " WHERE id = $1";
constexpr char kLiveOccurrencesSql[] =
    "SELECT " SKED_PG_TASK_COLUMNS " FROM tasks WHERE schedule_id = $1 AND deleted_at IS NULL"
    " AND state IN ('scheduled', 'provisioning', 'running') ORDER BY occurrence";

// Many finishes in one statement: each row applies only while its task is
// live and provisioning or running in that attempt (the fencing of
// TaskFinish); the rows that applied come back.
constexpr char kFinishManySql[] =
    "WITH p AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::text[],"
    "  $6::text[], $7::text[], $8::text[], $9::int8[])"
    "  AS p(id, attempt, state, exit_code, output, error, node, message, at_us)),"
    " u AS (UPDATE tasks t SET state = p.state,"
    "  finished_at = timestamptz 'epoch' + p.at_us * interval '1 microsecond',"
    "  result_exit_code = p.exit_code, result_output = p.output, error = p.error,"
    "  lease_owner = NULL, lease_expires_at = NULL"
    "  FROM p WHERE t.id = p.id AND t.attempt = p.attempt"
    "  AND " SKED_PG_LIVE_STATE_FENCE
    "  RETURNING t.id, t.state, t.attempt, t.instance_id, p.node, p.message, t.finished_at),"
    " e AS (INSERT INTO task_events (task_id, at, state, attempt, node, instance_id, message)"
    "  SELECT id, finished_at, state, attempt, node, instance_id, message FROM u)"
    " SELECT id FROM u";
constexpr char kLiveIdsSql[] =
    "SELECT id FROM tasks WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL";

constexpr char kWebhookClaimSql[] =
    "WITH c AS (SELECT id FROM webhooks WHERE state = 'pending'"
    " AND next_attempt_at <= $1::timestamptz"
    " AND (lease_expires_at IS NULL OR lease_expires_at < $1::timestamptz)"
    " ORDER BY next_attempt_at, id LIMIT $2::int FOR UPDATE SKIP LOCKED)"
    " UPDATE webhooks w SET attempt = w.attempt + 1, lease_owner = $3,"
    " lease_expires_at = $4::timestamptz FROM c WHERE w.id = c.id"
    " RETURNING w.id, w.task_id, w.url, w.task_state, w.attempt";

// Fenced by state and attempt; returns the task when it applied.
constexpr char kWebhookFinishSql[] =
    "UPDATE webhooks SET state = $3, next_attempt_at = coalesce($4::timestamptz,"
    " next_attempt_at), lease_owner = NULL, lease_expires_at = NULL, last_error = $5,"
    " finished_at = $6::timestamptz"
    " WHERE id = $1::int8 AND state = 'pending' AND attempt = $2::int RETURNING task_id";

constexpr char kWebhookExistsSql[] = "SELECT 1 FROM webhooks WHERE id = $1::int8";

// The task's history line, in its current state; nothing for a deleted task.
constexpr char kWebhookEventSql[] =
    "INSERT INTO task_events (task_id, at, state, attempt, node, instance_id, message)"
    " SELECT id, $2::timestamptz, state, attempt, $3, instance_id, $4 FROM tasks"
    " WHERE id = $1 AND deleted_at IS NULL";

// Rate-limited or capped queues that have due tasks for these runners.
constexpr char kLimitedQueuesSql[] =
    "SELECT name FROM queues q"
    " WHERE (q.max_running IS NOT NULL OR q.max_per_second IS NOT NULL)"
    " AND EXISTS (SELECT 1 FROM tasks t WHERE t.queue = q.name"
    "  AND t.state = 'scheduled' AND t.deleted_at IS NULL"
    "  AND t.run_at <= $1::timestamptz AND t.runner = ANY($2::text[]))"
    " ORDER BY name";
constexpr char kAnyLimitedQueueSql[] =
    "SELECT EXISTS (SELECT 1 FROM queues"
    " WHERE max_running IS NOT NULL OR max_per_second IS NOT NULL)";

// Locks the queue's row: claimers of one limited queue take turns, so
// together they never pass its limits. A row lock waited for returns the
// row's latest version, but the rest of that statement still sees the
// snapshot from before the wait: the running count is a statement of its own.
constexpr char kLockQueueSql[] =
    "SELECT max_running, max_per_second::text, bucket_tokens::text, " SKED_PG_US("bucket_at")
    " FROM queues WHERE name = $1 FOR UPDATE";
constexpr char kQueueRunningSql[] =
    "SELECT count(*) FROM tasks WHERE queue = $1 AND deleted_at IS NULL"
    " AND state IN ('provisioning', 'running')";

constexpr char kSaveBucketSql[] =
    "UPDATE queues SET bucket_tokens = $2::float8, bucket_at = $3::timestamptz WHERE name = $1";

constexpr char kQueuePutSql[] =
    "INSERT INTO queues (name, max_running, max_per_second, updated_at)"
    " VALUES ($1, $2::int8, $3::float8, $4::timestamptz)"
    " ON CONFLICT (name) DO UPDATE SET max_running = excluded.max_running,"
    " max_per_second = excluded.max_per_second, updated_at = excluded.updated_at,"
    " bucket_tokens = NULL, bucket_at = NULL";

// Configured queues and those live tasks name, with their counts.
constexpr char kQueueListSql[] =
    "WITH counts AS (SELECT queue,"
    "  count(*) FILTER (WHERE state IN ('provisioning', 'running')) AS running,"
    "  count(*) FILTER (WHERE state = 'scheduled') AS scheduled"
    "  FROM tasks WHERE deleted_at IS NULL GROUP BY queue)"
    " SELECT coalesce(q.name, c.queue), q.max_running, q.max_per_second::text, "
    SKED_PG_US("q.updated_at") ", coalesce(c.running, 0), coalesce(c.scheduled, 0)"
    " FROM queues q FULL JOIN counts c ON c.queue = q.name ORDER BY 1";

// Inserts unless present, then reads: one statement, and the first writer
// wins even when several nodes start at once.
constexpr char kSettingInitSql[] =
    "WITH ins AS (INSERT INTO settings (key, value) VALUES ($1, $2) "
    "ON CONFLICT (key) DO NOTHING RETURNING value) "
    "SELECT value FROM ins UNION ALL SELECT value FROM settings WHERE key = $1";
constexpr char kLeaderResignSql[] = "DELETE FROM leader WHERE name = 'default' AND node = $1";

// --- Task helpers; each runs on the caller's connection ----------------------

// Task ids are stored as uuid (migration 0009). A string that is not one
// names no task: it is answered here, as kNotFound, and never reaches a query
// where its cast would fail.
Status CheckTaskId(const std::string& id) {
  if (core::IsUuid(id)) return core::OkStatus();
  return core::NotFoundError("task " + id + " not found");
}

// The live task `id`, locked until the transaction ends; kNotFound if absent
// or deleted.
StatusOr<Task> LockLiveTask(Connection& conn, const std::string& id) {
  RETURN_IF_ERROR(CheckTaskId(id));
  ASSIGN_OR_RETURN(Result r, conn.Exec(kSelectLiveTaskForUpdateSql, Params().Add(id), "load task"));
  if (r.rows() == 0) return core::NotFoundError("task " + id + " not found");
  return ReadTask(r, 0);
}

StatusOr<std::optional<Task>> FindLiveTaskByIdempotencyKey(Connection& conn,
                                                           const std::string& key) {
  ASSIGN_OR_RETURN(Result r, conn.Exec(kSelectByIdempotencyKeySql, Params().Add(key),
                                       "find task by idempotency key"));
  if (r.rows() == 0) return std::optional<Task>();
  ASSIGN_OR_RETURN(Task t, ReadTask(r, 0));
  return std::optional<Task>(std::move(t));
}

std::string MicrosText(Time t) { return std::to_string(core::ToMicros(t)); }

Status Notify(Connection& conn, Time earliest) {
  return conn.Exec(kNotifySql, Params().Add(MicrosText(earliest)), "notify").status();
}

// The history line a change appends.
struct EventSpec {
  Time at{};
  std::optional<std::string> node;
  std::string message;
};

Status AppendEvent(Connection& conn, const Task& t, const EventSpec& e) {
  return conn
      .Exec(kAppendEventSql,
            Params()
                .Add(t.id)
                .Add(e.at)
                .Add(core::TaskStateName(t.state))
                .Add(t.attempt)
                .Add(e.node)
                .Add(t.instance_id)
                .Add(e.message),
            "append task event")
      .status();
}

// Compare-and-set: writes the mutable fields of `after` if the row is still
// live in `before`'s state and attempt, and appends `event` (if any) in the
// same statement. kAborted when it is not (a lost race).
Status CasUpdateTask(Connection& conn, const Task& before, const Task& after,
                     const std::optional<EventSpec>& event) {
  if (before.state != after.state && !core::IsValidTransition(before.state, after.state)) {
    return core::FailedPreconditionError("task " + before.id + ": cannot move from " +
                                         std::string(TaskStateName(before.state)) + " to " +
                                         std::string(TaskStateName(after.state)));
  }
  Params p;
  p.Add(core::TaskStateName(after.state))
      .Add(after.run_at)
      .Add(after.attempt)
      .Add(after.free_attempts)
      .Add(after.started_at)
      .Add(after.finished_at)
      .Add(after.instance_id);
  if (after.result.has_value()) {
    p.Add(after.result->exit_code).Add(after.result->output);
  } else {
    p.AddNull().AddNull();
  }
  p.Add(after.error)
      .Add(after.lease_owner)
      .Add(after.lease_expires_at)
      .Add(after.handle)
      .Add(before.id)
      .Add(core::TaskStateName(before.state))
      .Add(before.attempt);
  if (event.has_value()) p.Add(event->at).Add(event->node).Add(event->message);
  ASSIGN_OR_RETURN(Result r, conn.Exec(event.has_value() ? kCasUpdateWithEventSql : kCasUpdateSql,
                                       p, "update task"));
  if (r.affected() != 1) {
    return core::AbortedError("task " + before.id + " changed concurrently");
  }
  return core::OkStatus();
}

bool IsActive(TaskState s) { return s == TaskState::kProvisioning || s == TaskState::kRunning; }

// Fencing for calls that act on one attempt: OK only while the task is
// provisioning or running in `attempt`.
Status CheckCurrentAttempt(const Task& t, int attempt) {
  if (!IsActive(t.state) || t.attempt != attempt) {
    return core::AbortedError("task " + t.id + " attempt " + std::to_string(attempt) +
                              " is no longer current");
  }
  return core::OkStatus();
}

std::string MessageOr(const std::string& message, std::string_view fallback) {
  return message.empty() ? std::string(fallback) : message;
}

// Inserts one task, or returns the live task holding its idempotency key.
// With `notify`, the insert itself wakes other nodes.
// `task` as inserted: a new task starts fresh whatever the caller left in
// the run-time fields.
Task FreshTask(const Task& task) {
  Task t = task;
  t.state = TaskState::kScheduled;
  t.attempt = 0;
  t.free_attempts = 0;
  t.started_at.reset();
  t.finished_at.reset();
  t.instance_id.reset();
  t.result.reset();
  t.error.reset();
  core::ClearLease(t);
  t.handle.reset();
  return t;
}

StatusOr<core::TaskInsertResult> InsertOne(Connection& conn, const Task& task, bool notify) {
  if (task.id.empty()) return core::InvalidArgumentError("task id is empty");
  if (!core::IsUuid(task.id)) {
    return core::InvalidArgumentError("task id " + task.id + " is not a UUID");
  }
  Task t = FreshTask(task);

  // The key's holder may be deleted between the insert that lost to it and
  // the lookup; then the key is free and the insert runs again.
  for (int round = 0; round < kMaxAttempts; ++round) {
    Params p;
    p.Add(t.id)
        .Add(t.type)
        .Add(t.runner)
        .Add(t.queue)
        .Add(t.run_at)
        .Add(t.image)
        .Add(store_internal::EncodeStringList(t.command))
        .Add(store_internal::EncodeStringMap(t.env))
        .Add(t.max_attempts)
        .Add(t.timeout_s)
        .Add(t.idempotency_key)
        .Add(store_internal::EncodeStringMap(t.labels))
        .Add(t.notify_url)
        .Add(t.schedule_id)
        .Add(t.occurrence)
        .Add(t.created_at);
    if (notify) p.Add(MicrosText(t.run_at));
    StatusOr<Result> r =
        conn.Exec(notify ? kInsertTaskNotifySql : kInsertTaskSql, p, "insert task");
    if (!r.ok()) {
      if (r.status().code() == core::StatusCode::kAlreadyExists) {
        return core::AlreadyExistsError("task " + t.id + " already exists");
      }
      return r.status();
    }
    if (r->rows() == 1) {
      return core::TaskInsertResult{.task = std::move(t), .inserted = true};
    }
    if (!t.idempotency_key.has_value()) {
      return core::InternalError("postgres: insert task: no row inserted");
    }
    ASSIGN_OR_RETURN(std::optional<Task> existing,
                     FindLiveTaskByIdempotencyKey(conn, *t.idempotency_key));
    if (existing.has_value()) {
      return core::TaskInsertResult{.task = std::move(*existing), .inserted = false};
    }
  }
  return core::AbortedError("task " + t.id + ": its idempotency key changed hands repeatedly");
}

// --- Result plumbing ---------------------------------------------------------

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const StatusOr<T>& s) {
  return s.status();
}

bool ValidSchemaName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (s[0] >= '0' && s[0] <= '9') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// --- The store ---------------------------------------------------------------

// Thread safety: safe for concurrent use. Each call checks a connection out of
// the pool for its duration; the subscriber and the listener have their own
// mutexes.
class PostgresStore final : public core::Store {
 public:
  PostgresStore(const ConnectConfig& config, const PostgresOptions& options)
      : config_(config),
        notify_horizon_(options.notify_horizon),
        limited_queues_recheck_(options.limited_queues_recheck),
        pool_(config, options.pool_size, options.checkout_timeout),
        gets_([this](const std::vector<std::string>& ids) { return TaskGetMany(ids); },
              kGetsInFlight, kMaxGetBatch),
        inserts_([this](const std::vector<Task>& tasks) { return TaskInsertBatch(tasks); },
                 kInsertsInFlight, kMaxInsertBatch),
        async_gets_([this] { return Connection::Open(config_); }, SendGetTasks, FinishGetTasks,
                    kGetsInFlight, kMaxGetBatch) {}
  ~PostgresStore() override;

  void AdoptConnection(std::unique_ptr<Connection> conn) { pool_.Adopt(std::move(conn)); }

  StatusOr<core::TaskInsertResult> TaskInsert(const Task& task) override;
  StatusOr<std::vector<core::TaskInsertResult>> TaskInsertMany(
      const std::vector<Task>& tasks) override;
  StatusOr<Task> TaskGet(const std::string& id) override;
  bool TaskGetAsync(const std::string& id, std::function<void(StatusOr<Task>)> done) override;
  StatusOr<core::TaskPage> TaskList(const core::TaskListParams& params) override;
  StatusOr<std::vector<Task>> TaskClaim(const core::TaskClaimParams& params) override;
  StatusOr<std::optional<Time>> TaskNextRunAt(const std::vector<std::string>& runners) override;
  StatusOr<std::vector<core::TaskLeaseRef>> TaskLeaseRenew(
      const core::TaskLeaseRenewParams& params) override;
  Status TaskSetHandle(const core::TaskSetHandleParams& params) override;
  Status TaskMarkRunning(const core::TaskMarkRunningParams& params) override;
  Status TaskFinish(const core::TaskFinishParams& params) override;
  StatusOr<Task> TaskAdopt(const core::TaskAdoptParams& params) override;
  std::vector<Status> TaskFinishMany(const std::vector<core::TaskFinishParams>& batch) override;
  StatusOr<Task> TaskRetry(const core::TaskRetryParams& params) override;
  StatusOr<Task> TaskCancel(const core::TaskCancelParams& params) override;
  StatusOr<Task> TaskDelete(const core::TaskCancelParams& params) override;
  StatusOr<std::vector<Task>> TaskRescue(const core::TaskRescueParams& params) override;
  StatusOr<std::vector<TaskEvent>> TaskEventList(const std::string& id) override;
  StatusOr<std::map<TaskState, int64_t>> TaskCountByState() override;
  Status NodeHeartbeat(const NodeInfo& node) override;
  StatusOr<std::vector<NodeInfo>> NodeList() override;
  StatusOr<int64_t> NodePrune(Time silent_since) override;
  StatusOr<bool> LeaderElect(const std::string& node, Time now, Duration ttl) override;
  Status LeaderResign(const std::string& node) override;

  // After this returns, the previous subscriber is not running and is never
  // called again. `fn` runs on the listener's thread and must not call
  // TaskSubscribeDue. It also runs once with Time{} (the epoch) each time
  // the listener (re)connects, since notifications sent while it was away
  // are lost.
  void TaskSubscribeDue(std::function<void(Time)> fn) override
      SKED_PG_LOCKS_EXCLUDED(subscriber_mu_, listener_mu_);

  StatusOr<core::Schedule> ScheduleInsert(const core::Schedule& schedule) override;
  StatusOr<core::Schedule> ScheduleGet(const std::string& id) override;
  StatusOr<core::SchedulePage> ScheduleList(const core::ScheduleListParams& params) override;
  Status ScheduleDelete(const std::string& id) override;
  StatusOr<core::Schedule> ScheduleSetPaused(const std::string& id, bool paused,
                                             std::optional<Time> next_run_at,
                                             Time now) override;
  StatusOr<std::vector<core::Schedule>> ScheduleListDue(Time before, int limit) override;
  StatusOr<std::optional<Time>> ScheduleNextRunAt() override;
  StatusOr<core::ScheduleFireResult> ScheduleFire(const core::ScheduleFireParams& params) override;
  StatusOr<std::vector<core::WebhookDelivery>> WebhookClaim(
      const core::WebhookClaimParams& params) override;
  Status WebhookFinish(const core::WebhookFinishParams& params) override;
  StatusOr<core::QueueLimits> QueuePut(const core::QueueLimits& limits) override;
  StatusOr<std::vector<core::QueueInfo>> QueueList() override;
  StatusOr<std::string> SettingInit(const std::string& key, const std::string& value) override;
  Status Ping() override;

 private:
  // Runs fn(conn) on a pooled connection, each statement in its own
  // transaction; again (up to kMaxAttempts in all) after a deadlock.
  template <typename Fn>
  std::invoke_result_t<Fn, Connection&> Run(Fn&& fn);

  // Runs fn(conn) inside BEGIN ... COMMIT; rolls back when it fails. Runs
  // it again (up to kMaxAttempts in all) after a serialization failure or a
  // deadlock. Returns fn's result, or the commit's error (kUnavailable when
  // the connection dropped: the commit may or may not have happened).
  template <typename Fn>
  std::invoke_result_t<Fn, Connection&> Transact(Fn&& fn);

  void OnDue(const std::optional<std::string>& payload) SKED_PG_LOCKS_EXCLUDED(subscriber_mu_);

  // TaskClaim's fast path when params.run_instantly is set: see kClaimWriteSql.
  StatusOr<std::vector<Task>> ClaimRunningInstantly(const core::TaskClaimParams& params);

  // Whether any queue has limits, re-read at most every
  // limited_queues_recheck_ (QueuePut here sets it at once): without any, a
  // claim is a single statement.
  bool MayHaveLimitedQueues();
  std::atomic<int64_t> limited_checked_us_{0};  // system_clock, microseconds
  std::atomic<bool> has_limited_{true};

  // One statement for the TaskGet calls that gets_ put in one batch; the
  // result for ids[i] is element i.
  std::vector<StatusOr<Task>> TaskGetMany(const std::vector<std::string>& ids);

  // Whether inserting `t` must wake the other nodes (see
  // PostgresOptions::notify_horizon).
  bool ShouldNotify(const Task& t) const {
    return t.run_at < t.created_at + notify_horizon_ || notify_horizon_.count() == 0;
  }

  const ConnectConfig config_;
  const std::chrono::milliseconds notify_horizon_;
  const std::chrono::milliseconds limited_queues_recheck_;
  Pool pool_;

  // TaskGet's batches: at most kGetsInFlight statements at once, so the
  // other pooled connections stay free for claims and writes.
  static constexpr int kGetsInFlight = 2;
  static constexpr size_t kMaxGetBatch = 64;
  postgres_internal::Batcher<StatusOr<Task>> gets_;
  // TaskInsert's batches: concurrent inserts without an idempotency key
  // share one statement (and one commit and notification); the result for
  // tasks[i] is element i.
  std::vector<StatusOr<core::TaskInsertResult>> TaskInsertBatch(const std::vector<Task>& tasks);
  static constexpr int kInsertsInFlight = 2;
  static constexpr size_t kMaxInsertBatch = 64;
  postgres_internal::Batcher<StatusOr<core::TaskInsertResult>, Task> inserts_;
  // TaskGetAsync's reads: as many statements at once, each on one of the
  // reader's own connections (two more than the pool's).
  postgres_internal::AsyncReader async_gets_;

  Mutex subscriber_mu_;  // held while the subscriber runs
  std::function<void(Time)> subscriber_ SKED_PG_GUARDED_BY(subscriber_mu_);

  Mutex listener_mu_;
  std::unique_ptr<Listener> listener_ SKED_PG_GUARDED_BY(listener_mu_);
};

PostgresStore::~PostgresStore() {
  std::unique_ptr<Listener> listener;
  {
    MutexLock lock(&listener_mu_);
    listener = std::move(listener_);
  }
  listener.reset();  // joins the thread before the subscriber goes away
}

template <typename Fn>
std::invoke_result_t<Fn, Connection&> PostgresStore::Run(Fn&& fn) {
  using R = std::invoke_result_t<Fn, Connection&>;
  for (int attempt = 1;; ++attempt) {
    StatusOr<Pool::Lease> lease = pool_.Checkout();
    if (!lease.ok()) return R(lease.status());
    Connection& conn = lease->conn();
    R result = fn(conn);
    if (StatusOf(result).ok() || !conn.last_error_retryable() || attempt >= kMaxAttempts) {
      return result;
    }
  }
}

template <typename Fn>
std::invoke_result_t<Fn, Connection&> PostgresStore::Transact(Fn&& fn) {
  using R = std::invoke_result_t<Fn, Connection&>;
  for (int attempt = 1;; ++attempt) {
    StatusOr<Pool::Lease> lease = pool_.Checkout();
    if (!lease.ok()) return R(lease.status());
    Connection& conn = lease->conn();
    Status begun = conn.ExecScript("BEGIN", "begin transaction");
    if (!begun.ok()) return R(begun);
    R result = fn(conn);
    Status s = StatusOf(result);
    if (s.ok()) {
      s = conn.ExecScript("COMMIT", "commit");
      if (s.ok()) return result;
    }
    const bool retry = conn.last_error_retryable();
    conn.Rollback();
    if (retry && attempt < kMaxAttempts) continue;
    if (!StatusOf(result).ok()) return result;
    return R(s);
  }
}

// --- Tasks -------------------------------------------------------------------

StatusOr<core::TaskInsertResult> PostgresStore::TaskInsert(const Task& task) {
  return inserts_.Call(task);
}

std::vector<StatusOr<core::TaskInsertResult>> PostgresStore::TaskInsertBatch(
    const std::vector<Task>& tasks) {
  std::vector<std::optional<StatusOr<core::TaskInsertResult>>> out(tasks.size());
  // Tasks without an idempotency key go in one statement; a key needs the
  // lookup of its holder, so those go one by one.
  std::vector<size_t> plain;
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (!tasks[i].idempotency_key.has_value() && core::IsUuid(tasks[i].id)) plain.push_back(i);
  }
  if (plain.size() > 1) {
    std::vector<std::string> ids, types, runners, queues, images, commands, envs, labels;
    std::vector<int> max_attempts;
    std::vector<std::optional<int64_t>> run_ats, timeouts, occurrences, created_ats;
    std::vector<std::optional<std::string>> notify_urls, schedule_ids;
    std::optional<Time> notify_at;
    for (size_t i : plain) {
      const Task& t = tasks[i];
      ids.push_back(t.id);
      types.push_back(t.type);
      runners.push_back(t.runner);
      queues.push_back(t.queue);
      run_ats.push_back(core::ToMicros(t.run_at));
      images.push_back(t.image);
      commands.push_back(store_internal::EncodeStringList(t.command));
      envs.push_back(store_internal::EncodeStringMap(t.env));
      max_attempts.push_back(t.max_attempts);
      timeouts.push_back(t.timeout_s);
      labels.push_back(store_internal::EncodeStringMap(t.labels));
      notify_urls.push_back(t.notify_url);
      schedule_ids.push_back(t.schedule_id);
      occurrences.push_back(t.occurrence ? std::optional<int64_t>(core::ToMicros(*t.occurrence))
                                         : std::nullopt);
      created_ats.push_back(core::ToMicros(t.created_at));
      if (ShouldNotify(t) && (!notify_at || t.run_at < *notify_at)) notify_at = t.run_at;
    }
    Params p;
    p.Add(TextArrayLiteral(ids))
        .Add(TextArrayLiteral(types))
        .Add(TextArrayLiteral(runners))
        .Add(TextArrayLiteral(queues))
        .Add(NullableInt64ArrayLiteral(run_ats))
        .Add(TextArrayLiteral(images))
        .Add(TextArrayLiteral(commands))
        .Add(TextArrayLiteral(envs))
        .Add(IntArrayLiteral(max_attempts))
        .Add(NullableInt64ArrayLiteral(timeouts))
        .Add(TextArrayLiteral(labels))
        .Add(NullableTextArrayLiteral(notify_urls))
        .Add(NullableTextArrayLiteral(schedule_ids))
        .Add(NullableInt64ArrayLiteral(occurrences))
        .Add(NullableInt64ArrayLiteral(created_ats))
        .Add(notify_at ? std::optional<std::string>(MicrosText(*notify_at)) : std::nullopt);
    StatusOr<int64_t> inserted = Run([&](Connection& conn) -> StatusOr<int64_t> {
      ASSIGN_OR_RETURN(Result r, conn.Exec(kInsertTasksSql, p, "insert tasks"));
      return r.Int(0, 0);
    });
    if (inserted.ok() && *inserted == static_cast<int64_t>(plain.size())) {
      for (size_t i : plain) {
        out[i] = core::TaskInsertResult{.task = FreshTask(tasks[i]), .inserted = true};
      }
    } else if (!inserted.ok() && inserted.status().code() == core::StatusCode::kUnavailable) {
      // The connection dropped: the commit may or may not have happened, as
      // for an insert alone, and each caller learns just that.
      for (size_t i : plain) out[i] = inserted.status();
    }
    // Otherwise one task failed the statement, and with it all the others:
    // each on its own below, so each caller gets its own outcome.
  }
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (out[i].has_value()) continue;
    out[i] = Run([&](Connection& conn) { return InsertOne(conn, tasks[i], ShouldNotify(tasks[i])); });
  }
  std::vector<StatusOr<core::TaskInsertResult>> answers;
  answers.reserve(out.size());
  for (auto& a : out) answers.push_back(std::move(*a));
  return answers;
}

StatusOr<std::vector<core::TaskInsertResult>> PostgresStore::TaskInsertMany(
    const std::vector<Task>& tasks) {
  if (tasks.empty()) return std::vector<core::TaskInsertResult>();
  return Transact([&](Connection& conn) -> StatusOr<std::vector<core::TaskInsertResult>> {
    std::vector<core::TaskInsertResult> out;
    out.reserve(tasks.size());
    std::optional<Time> notify_at;
    for (const Task& t : tasks) {
      // A key repeated within the batch finds the earlier element, which
      // this transaction has already written.
      ASSIGN_OR_RETURN(core::TaskInsertResult r, InsertOne(conn, t, /*notify=*/false));
      if (r.inserted && ShouldNotify(r.task) && (!notify_at || r.task.run_at < *notify_at)) {
        notify_at = r.task.run_at;
      }
      out.push_back(std::move(r));
    }
    if (notify_at.has_value()) RETURN_IF_ERROR(Notify(conn, *notify_at));
    return out;
  });
}

StatusOr<Task> PostgresStore::TaskGet(const std::string& id) {
  RETURN_IF_ERROR(CheckTaskId(id));
  return gets_.Call(id);
}

std::vector<StatusOr<Task>> PostgresStore::TaskGetMany(const std::vector<std::string>& ids) {
  if (ids.size() == 1) {
    return {Run([&](Connection& conn) -> StatusOr<Task> {
      ASSIGN_OR_RETURN(Result r,
                       conn.Exec(kSelectLiveTaskSql, Params().Add(ids.front()), "get task"));
      if (r.rows() == 0) return core::NotFoundError("task " + ids.front() + " not found");
      return ReadTask(r, 0);
    })};
  }
  // Every id passed CheckTaskId, so each is a plain UUID in the array literal.
  StatusOr<std::vector<Task>> found = Run([&](Connection& conn) -> StatusOr<std::vector<Task>> {
    ASSIGN_OR_RETURN(
        Result r, conn.Exec(kSelectLiveTasksSql, Params().Add(TextArrayLiteral(ids)), "get tasks"));
    return ReadTasks(r);
  });
  return TasksForIds(std::move(found), ids);
}

bool PostgresStore::TaskGetAsync(const std::string& id,
                                 std::function<void(StatusOr<Task>)> done) {
  if (Status s = CheckTaskId(id); !s.ok()) {
    done(std::move(s));
    return true;
  }
  async_gets_.Read(id, std::move(done));
  return true;
}

StatusOr<core::TaskPage> PostgresStore::TaskList(const core::TaskListParams& params) {
  ASSIGN_OR_RETURN(postgres_internal::TaskListQuery q,
                   postgres_internal::BuildTaskListQuery(params));
  return Run([&](Connection& conn) -> StatusOr<core::TaskPage> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(q.sql, q.params, "list tasks"));
    core::TaskPage page;
    ASSIGN_OR_RETURN(page.tasks, ReadTasks(r));
    if (page.tasks.size() > static_cast<size_t>(params.limit)) {
      page.tasks.pop_back();
      page.next =
          core::TaskListCursor{.run_at = page.tasks.back().run_at, .id = page.tasks.back().id};
    }
    return page;
  });
}

StatusOr<std::vector<Task>> PostgresStore::TaskClaim(const core::TaskClaimParams& params) {
  if (params.limit <= 0 || params.runners.empty()) return std::vector<Task>();
  auto claim = [&](Connection& conn, int limit,
                   const std::optional<std::string>& only) -> StatusOr<std::vector<Task>> {
    Params p;
    p.Add(params.now)
        .Add(TextArrayLiteral(params.runners))
        .Add(limit)
        .Add(TextArrayLiteral(params.provisioning_runners))
        .Add(params.node)
        .Add(params.now + params.lease)
        .Add(only.has_value() ? "false" : "true")
        .Add(only);
    ASSIGN_OR_RETURN(Result r, conn.Exec(kClaimSql, p, "claim tasks"));
    return ReadTasks(r);
  };
  // The fast path: one statement over every queue without limits (a
  // transaction of two when the caller runs some tasks at once).
  ASSIGN_OR_RETURN(std::vector<Task> claimed,
                   params.run_instantly
                       ? ClaimRunningInstantly(params)
                       : Run([&](Connection& conn) {
                           return claim(conn, params.limit, std::nullopt);
                         }));
  if (static_cast<int>(claimed.size()) >= params.limit || !MayHaveLimitedQueues()) {
    return claimed;
  }
  // The limited queues' claims below change the answer.
  if (params.next_run_at != nullptr) params.next_run_at->reset();
  // Then each limited queue with due tasks, under its row lock. An error
  // here still returns what was claimed: those claims are committed.
  auto queues = Run([&](Connection& conn) -> StatusOr<std::vector<std::string>> {
    ASSIGN_OR_RETURN(Result r,
                     conn.Exec(kLimitedQueuesSql,
                               Params().Add(params.now).Add(TextArrayLiteral(params.runners)),
                               "find limited queues"));
    std::vector<std::string> names;
    for (int i = 0; i < r.rows(); ++i) names.emplace_back(r.Text(i, 0));
    return names;
  });
  if (!queues.ok()) return claimed.empty() ? StatusOr<std::vector<Task>>(queues.status()) : claimed;
  for (const std::string& queue : *queues) {
    const int want = params.limit - static_cast<int>(claimed.size());
    if (want <= 0) break;
    auto got = Transact([&](Connection& conn) -> StatusOr<std::vector<Task>> {
      ASSIGN_OR_RETURN(Result q, conn.Exec(kLockQueueSql, Params().Add(queue), "lock queue"));
      if (q.rows() == 0) return std::vector<Task>();  // limits removed meanwhile
      int64_t allow = want;
      if (!q.IsNull(0, 0)) {
        ASSIGN_OR_RETURN(Result running,
                         conn.Exec(kQueueRunningSql, Params().Add(queue), "count running"));
        allow = std::min(allow, std::max<int64_t>(0, q.Int(0, 0) - running.Int(0, 0)));
      }
      std::optional<double> rate = OptDouble(q, 0, 1);
      double tokens = 0;
      if (rate.has_value()) {
        tokens = core::QueueBucketTokens(*rate, OptDouble(q, 0, 2), OptTime(q, 0, 3), params.now);
        allow = std::min(allow, static_cast<int64_t>(std::floor(tokens)));
      }
      if (allow <= 0) return std::vector<Task>();
      ASSIGN_OR_RETURN(std::vector<Task> got, claim(conn, static_cast<int>(allow), queue));
      if (rate.has_value() && !got.empty()) {
        RETURN_IF_ERROR(conn.Exec(kSaveBucketSql,
                                  Params()
                                      .Add(queue)
                                      .Add(FormatDouble(tokens - static_cast<double>(got.size())))
                                      .Add(params.now),
                                  "save rate bucket")
                            .status());
      }
      return got;
    });
    if (!got.ok()) return claimed.empty() ? got : claimed;
    for (Task& t : *got) claimed.push_back(std::move(t));
  }
  return claimed;
}

StatusOr<std::vector<Task>> PostgresStore::ClaimRunningInstantly(
    const core::TaskClaimParams& params) {
  return Run([&](Connection& conn) -> StatusOr<std::vector<Task>> {
    std::vector<Task> tasks;
    bool alike = false;
    bool with_next = false;  // kClaimWriteAlikeNextSql: TaskNextRunAt's answer too
    // Lock, run, write: one transaction in two round trips (ExecPair).
    auto write = [&](const Result& locked) -> StatusOr<std::optional<SecondStatement>> {
      // Each row as this claim leaves it, as far as it was read: the rows are
      // locked.
      ASSIGN_OR_RETURN(tasks, ReadTasks(locked, ReadDispatchFields));
      if (tasks.empty()) return std::optional<SecondStatement>();
      std::vector<std::optional<core::TaskFinishParams>> outcomes;
      outcomes.reserve(tasks.size());
      for (Task& task : tasks) {
        core::ApplyClaim(params, task);
        std::optional<core::TaskFinishParams> outcome = params.run_instantly(task);
        if (outcome) {
          RETURN_IF_ERROR(core::CheckFinishState(*outcome));
          core::ApplyFinish(*outcome, task);
        }
        outcomes.push_back(std::move(outcome));
      }
      alike = EndedAlike(outcomes);
      std::vector<std::string> ids;
      std::vector<std::optional<int64_t>> at_us;
      std::vector<std::optional<std::string>> outputs;
      for (size_t i = 0; i < tasks.size(); ++i) {
        const std::optional<core::TaskFinishParams>& o = outcomes[i];
        ids.push_back(tasks[i].id);
        at_us.push_back(o ? std::optional<int64_t>(core::ToMicros(o->now)) : std::nullopt);
        outputs.push_back(o && o->result ? std::optional<std::string>(o->result->output)
                                         : std::nullopt);
      }
      Params p;
      if (alike) {
        const core::TaskFinishParams& o = *outcomes.front();
        p.Add(TextArrayLiteral(ids))
            .Add(NullableInt64ArrayLiteral(at_us))
            .Add(NullableTextArrayLiteral(outputs))
            .Add(core::TaskStateName(o.state))
            .Add(o.result ? std::optional<int64_t>(o.result->exit_code) : std::nullopt)
            .Add(o.error)
            .Add(o.node)
            .Add(core::FinishEventMessage(o))
            .Add(params.now);
        with_next = params.next_run_at != nullptr && static_cast<int>(tasks.size()) < params.limit;
        if (!with_next) return std::optional<SecondStatement>({kClaimWriteAlikeSql, std::move(p)});
        p.Add(TextArrayLiteral(params.runners));
        return std::optional<SecondStatement>({kClaimWriteAlikeNextSql, std::move(p)});
      }
      std::vector<std::optional<std::string>> states, errors, nodes, messages;
      std::vector<std::optional<int64_t>> exit_codes;
      for (const std::optional<core::TaskFinishParams>& o : outcomes) {
        states.push_back(o ? std::optional<std::string>(core::TaskStateName(o->state))
                           : std::nullopt);
        exit_codes.push_back(o && o->result ? std::optional<int64_t>(o->result->exit_code)
                                            : std::nullopt);
        errors.push_back(o ? o->error : std::nullopt);
        nodes.push_back(o ? o->node : std::nullopt);
        messages.push_back(o ? std::optional<std::string>(core::FinishEventMessage(*o))
                             : std::nullopt);
      }
      p.Add(TextArrayLiteral(ids))
          .Add(NullableTextArrayLiteral(states))
          .Add(NullableInt64ArrayLiteral(exit_codes))
          .Add(NullableTextArrayLiteral(outputs))
          .Add(NullableTextArrayLiteral(errors))
          .Add(NullableTextArrayLiteral(nodes))
          .Add(NullableTextArrayLiteral(messages))
          .Add(NullableInt64ArrayLiteral(at_us))
          .Add(TextArrayLiteral(params.provisioning_runners))
          .Add(params.now)
          .Add(params.node)
          .Add(params.now + params.lease);
      return std::optional<SecondStatement>({kClaimWriteSql, std::move(p)});
    };
    ASSIGN_OR_RETURN(std::optional<Result> written,
                     conn.ExecPair(kClaimLockSql,
                                   Params()
                                       .Add(params.now)
                                       .Add(TextArrayLiteral(params.runners))
                                       .Add(params.limit),
                                   {kClaimWriteSql, kClaimWriteAlikeSql, kClaimWriteAlikeNextSql},
                                   write, "claim tasks"));
    if (!written.has_value()) return tasks;  // nothing was due
    // Every row is locked by this transaction, so the write finds each: a
    // bug check, made once the transaction has committed.
    const int64_t rows = with_next ? written->Int(0, 0)
                         : alike   ? written->affected()
                                   : written->rows();
    if (rows != static_cast<int64_t>(tasks.size())) {
      return core::InternalError("claim tasks: a locked row was not written");
    }
    if (with_next) *params.next_run_at = OptTime(*written, 0, 1);
    if (alike) return tasks;  // nothing to launch: no whole row is read
    return ReadTasks(*written);
  });
}

bool PostgresStore::MayHaveLimitedQueues() {
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  if (std::chrono::microseconds(now_us - limited_checked_us_.load()) < limited_queues_recheck_) {
    return has_limited_.load();
  }
  auto any = Run([&](Connection& conn) -> StatusOr<bool> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kAnyLimitedQueueSql, Params(), "any limited queue"));
    return r.rows() == 1 && r.Text(0, 0) == "t";
  });
  if (!any.ok()) return true;  // look, rather than risk starving a queue
  has_limited_.store(*any);
  limited_checked_us_.store(now_us);
  return *any;
}

namespace {

StatusOr<core::Schedule> ReadSchedule(const Result& r, int i) {
  core::Schedule s;
  s.id = std::string(r.Text(i, 0));
  s.cron = std::string(r.Text(i, 1));
  s.timezone = std::string(r.Text(i, 2));
  s.task.type = std::string(r.Text(i, 3));
  s.task.runner = std::string(r.Text(i, 4));
  s.task.queue = std::string(r.Text(i, 5));
  s.task.image = std::string(r.Text(i, 6));
  ASSIGN_OR_RETURN(s.task.command, store_internal::DecodeStringList(r.Text(i, 7)));
  ASSIGN_OR_RETURN(s.task.env, store_internal::DecodeStringMap(r.Text(i, 8)));
  s.task.max_attempts = static_cast<int>(r.Int(i, 9));
  s.task.timeout_s = r.Int(i, 10);
  ASSIGN_OR_RETURN(s.task.labels, store_internal::DecodeStringMap(r.Text(i, 11)));
  s.task.notify_url = r.OptText(i, 12);
  std::optional<core::OverlapPolicy> overlap = core::ParseOverlapPolicy(r.Text(i, 13));
  std::optional<core::CatchUpPolicy> catch_up = core::ParseCatchUpPolicy(r.Text(i, 14));
  if (!overlap || !catch_up) {
    return core::InternalError("postgres: stored schedule has a bad policy");
  }
  s.overlap = *overlap;
  s.catch_up = *catch_up;
  s.notify_url = r.OptText(i, 15);
  s.paused = r.Int(i, 16) != 0;
  s.next_run_at = OptTime(r, i, 17);
  s.created_at = core::TimeFromMicros(r.Int(i, 18));
  s.updated_at = core::TimeFromMicros(r.Int(i, 19));
  return s;
}

StatusOr<std::vector<core::Schedule>> ReadSchedules(const Result& r) {
  std::vector<core::Schedule> out;
  for (int i = 0; i < r.rows(); ++i) {
    ASSIGN_OR_RETURN(core::Schedule s, ReadSchedule(r, i));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

StatusOr<core::Schedule> PostgresStore::ScheduleInsert(const core::Schedule& in) {
  if (in.id.empty()) return core::InvalidArgumentError("schedule id is empty");
  return Run([&](Connection& conn) -> StatusOr<core::Schedule> {
    Params p;
    p.Add(in.id)
        .Add(in.cron)
        .Add(in.timezone)
        .Add(in.task.type)
        .Add(in.task.runner)
        .Add(in.task.queue)
        .Add(in.task.image)
        .Add(store_internal::EncodeStringList(in.task.command))
        .Add(store_internal::EncodeStringMap(in.task.env))
        .Add(in.task.max_attempts)
        .Add(in.task.timeout_s)
        .Add(store_internal::EncodeStringMap(in.task.labels))
        .Add(in.task.notify_url)
        .Add(core::OverlapPolicyName(in.overlap))
        .Add(core::CatchUpPolicyName(in.catch_up))
        .Add(in.notify_url)
        .Add(in.paused ? "true" : "false")
        .Add(in.next_run_at)
        .Add(in.created_at)
        .Add(in.updated_at);
    StatusOr<Result> r = conn.Exec(kScheduleInsertSql, p, "insert schedule");
    if (!r.ok() && r.status().code() == core::StatusCode::kAlreadyExists) {
      return core::AlreadyExistsError("schedule " + in.id + " already exists");
    }
    RETURN_IF_ERROR(r.status());
    return in;
  });
}

StatusOr<core::Schedule> PostgresStore::ScheduleGet(const std::string& id) {
  return Run([&](Connection& conn) -> StatusOr<core::Schedule> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kScheduleGetSql, Params().Add(id), "get schedule"));
    if (r.rows() == 0) return core::NotFoundError("schedule " + id + " not found");
    return ReadSchedule(r, 0);
  });
}

StatusOr<core::SchedulePage> PostgresStore::ScheduleList(const core::ScheduleListParams& params) {
  if (params.limit < 1 || params.limit > 1000) {
    return core::InvalidArgumentError("limit must be in 1..1000");
  }
  return Run([&](Connection& conn) -> StatusOr<core::SchedulePage> {
    ASSIGN_OR_RETURN(Result r,
                     conn.Exec(kScheduleListSql,
                               Params().Add(params.after_id.value_or("")).Add(params.limit + 1),
                               "list schedules"));
    core::SchedulePage page;
    ASSIGN_OR_RETURN(page.schedules, ReadSchedules(r));
    if (static_cast<int>(page.schedules.size()) > params.limit) {
      page.schedules.pop_back();
      page.next = page.schedules.back().id;
    }
    return page;
  });
}

Status PostgresStore::ScheduleDelete(const std::string& id) {
  return Run([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kScheduleDeleteSql, Params().Add(id), "delete schedule"));
    if (r.affected() != 1) return core::NotFoundError("schedule " + id + " not found");
    return core::OkStatus();
  });
}

StatusOr<core::Schedule> PostgresStore::ScheduleSetPaused(const std::string& id, bool paused,
                                                          std::optional<Time> next_run_at,
                                                          Time now) {
  return Run([&](Connection& conn) -> StatusOr<core::Schedule> {
    ASSIGN_OR_RETURN(Result r,
                     conn.Exec(kSchedulePauseSql,
                               Params().Add(id).Add(paused ? "true" : "false").Add(next_run_at).Add(now),
                               "pause schedule"));
    if (r.rows() == 0) return core::NotFoundError("schedule " + id + " not found");
    return ReadSchedule(r, 0);
  });
}

StatusOr<std::vector<core::Schedule>> PostgresStore::ScheduleListDue(Time before, int limit) {
  return Run([&](Connection& conn) -> StatusOr<std::vector<core::Schedule>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kScheduleDueSql, Params().Add(before).Add(limit),
                                         "list due schedules"));
    return ReadSchedules(r);
  });
}

StatusOr<std::optional<Time>> PostgresStore::ScheduleNextRunAt() {
  return Run([&](Connection& conn) -> StatusOr<std::optional<Time>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kScheduleNextSql, Params(), "find next schedule"));
    if (r.rows() == 0) return std::optional<Time>();
    return OptTime(r, 0, 0);
  });
}

StatusOr<core::ScheduleFireResult> PostgresStore::ScheduleFire(
    const core::ScheduleFireParams& params) {
  return Transact([&](Connection& conn) -> StatusOr<core::ScheduleFireResult> {
    ASSIGN_OR_RETURN(Result r,
                     conn.Exec(kScheduleLockSql, Params().Add(params.id), "lock schedule"));
    if (r.rows() == 0) return core::NotFoundError("schedule " + params.id + " not found");
    ASSIGN_OR_RETURN(core::Schedule s, ReadSchedule(r, 0));
    if (s.paused || s.next_run_at != params.expected_next_run_at) {
      return core::AbortedError("schedule " + params.id + " changed concurrently");
    }
    core::ScheduleFireResult result;
    std::vector<Task> live;
    if (params.overlap != core::OverlapPolicy::kAllow && !params.occurrences.empty()) {
      ASSIGN_OR_RETURN(Result lr, conn.Exec(kLiveOccurrencesSql, Params().Add(params.id),
                                            "find live occurrences"));
      ASSIGN_OR_RETURN(live, ReadTasks(lr));
    }
    if (params.overlap == core::OverlapPolicy::kSkip && !live.empty()) {
      result.skipped = static_cast<int>(params.occurrences.size());
    } else {
      for (const Task& before : live) {  // kCancelPrevious
        Task after = before;
        after.state = TaskState::kCancelled;
        after.finished_at = params.now;
        core::ClearLease(after);
        RETURN_IF_ERROR(CasUpdateTask(
            conn, before, after,
            EventSpec{params.now, std::nullopt,
                      "cancelled: a later occurrence of its schedule started"}));
        result.cancelled.push_back(before);
      }
      for (const Task& t : params.occurrences) {
        ASSIGN_OR_RETURN(core::TaskInsertResult ins, InsertOne(conn, t, /*notify=*/true));
        result.inserted.push_back(std::move(ins.task));
      }
    }
    RETURN_IF_ERROR(conn.Exec(kScheduleAdvanceSql,
                              Params().Add(params.id).Add(params.next_run_at).Add(params.now),
                              "advance schedule")
                        .status());
    return result;
  });
}

StatusOr<std::vector<core::WebhookDelivery>> PostgresStore::WebhookClaim(
    const core::WebhookClaimParams& params) {
  if (params.limit <= 0) return std::vector<core::WebhookDelivery>();
  return Run([&](Connection& conn) -> StatusOr<std::vector<core::WebhookDelivery>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kWebhookClaimSql,
                                         Params()
                                             .Add(params.now)
                                             .Add(params.limit)
                                             .Add(params.node)
                                             .Add(params.now + params.lease),
                                         "claim webhooks"));
    std::vector<core::WebhookDelivery> out;
    for (int i = 0; i < r.rows(); ++i) {
      ASSIGN_OR_RETURN(TaskState state, StateFromText(r.Text(i, 3)));
      out.push_back({.id = r.Int(i, 0),
                     .task_id = std::string(r.Text(i, 1)),
                     .url = std::string(r.Text(i, 2)),
                     .task_state = state,
                     .attempt = static_cast<int>(r.Int(i, 4))});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
  });
}

Status PostgresStore::WebhookFinish(const core::WebhookFinishParams& params) {
  const char* state =
      params.delivered ? "delivered" : (params.retry_at.has_value() ? "pending" : "failed");
  return Transact([&](Connection& conn) -> Status {
    Params p;
    p.Add(params.id).Add(params.attempt).Add(state).Add(params.retry_at);
    if (params.delivered) {
      p.AddNull();
    } else {
      p.Add(params.error);
    }
    if (params.delivered || !params.retry_at.has_value()) {
      p.Add(params.now);
    } else {
      p.AddNull();
    }
    ASSIGN_OR_RETURN(Result r, conn.Exec(kWebhookFinishSql, p, "finish webhook"));
    if (r.rows() == 0) {
      ASSIGN_OR_RETURN(Result e,
                       conn.Exec(kWebhookExistsSql, Params().Add(params.id), "find webhook"));
      if (e.rows() == 0) {
        return core::NotFoundError("webhook " + std::to_string(params.id) + " not found");
      }
      return core::AbortedError("webhook attempt " + std::to_string(params.attempt) +
                                " is no longer current");
    }
    return conn
        .Exec(kWebhookEventSql,
              Params()
                  .Add(r.Text(0, 0))
                  .Add(params.now)
                  .Add(params.node)
                  .Add(core::WebhookEventMessage(params)),
              "append webhook event")
        .status();
  });
}

StatusOr<core::QueueLimits> PostgresStore::QueuePut(const core::QueueLimits& limits) {
  RETURN_IF_ERROR(core::ValidateQueueLimits(limits));
  return Run([&](Connection& conn) -> StatusOr<core::QueueLimits> {
    Params p;
    p.Add(limits.name).Add(limits.max_running);
    if (limits.max_per_second.has_value()) {
      p.Add(FormatDouble(*limits.max_per_second));
    } else {
      p.AddNull();
    }
    p.Add(limits.updated_at);
    RETURN_IF_ERROR(conn.Exec(kQueuePutSql, p, "put queue").status());
    if (limits.max_running.has_value() || limits.max_per_second.has_value()) {
      has_limited_.store(true);
    }
    return limits;
  });
}

StatusOr<std::vector<core::QueueInfo>> PostgresStore::QueueList() {
  return Run([&](Connection& conn) -> StatusOr<std::vector<core::QueueInfo>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kQueueListSql, Params(), "list queues"));
    std::vector<core::QueueInfo> out;
    for (int i = 0; i < r.rows(); ++i) {
      core::QueueInfo q;
      q.limits.name = std::string(r.Text(i, 0));
      q.limits.max_running = r.OptInt(i, 1);
      q.limits.max_per_second = OptDouble(r, i, 2);
      q.limits.updated_at = OptTime(r, i, 3).value_or(Time{});
      q.running = r.Int(i, 4);
      q.scheduled = r.Int(i, 5);
      out.push_back(std::move(q));
    }
    return out;
  });
}

StatusOr<std::optional<Time>> PostgresStore::TaskNextRunAt(
    const std::vector<std::string>& runners) {
  if (runners.empty()) return std::optional<Time>();
  return Run([&](Connection& conn) -> StatusOr<std::optional<Time>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kNextRunAtSql, Params().Add(TextArrayLiteral(runners)),
                                         "find next run_at"));
    if (r.rows() == 0) return std::optional<Time>();
    return OptTime(r, 0, 0);
  });
}

StatusOr<std::vector<core::TaskLeaseRef>> PostgresStore::TaskLeaseRenew(
    const core::TaskLeaseRenewParams& params) {
  if (params.tasks.empty()) return std::vector<core::TaskLeaseRef>();
  std::vector<std::string> ids;
  std::vector<int> attempts;
  for (const core::TaskLeaseRef& ref : params.tasks) {
    if (!core::IsUuid(ref.id)) continue;  // names no task: lost, below
    ids.push_back(ref.id);
    attempts.push_back(ref.attempt);
  }
  Params p;
  p.Add(params.now + params.lease)
      .Add(TextArrayLiteral(ids))
      .Add(IntArrayLiteral(attempts))
      .Add(params.node);
  return Run([&](Connection& conn) -> StatusOr<std::vector<core::TaskLeaseRef>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kLeaseRenewSql, p, "renew leases"));
    std::set<std::pair<std::string, int64_t>> held;
    for (int i = 0; i < r.rows(); ++i) {
      held.emplace(std::string(r.Text(i, 0)), r.Int(i, 1));
    }
    std::vector<core::TaskLeaseRef> lost;
    for (const core::TaskLeaseRef& ref : params.tasks) {
      if (!held.contains({ref.id, ref.attempt})) lost.push_back(ref);
    }
    return lost;
  });
}

Status PostgresStore::TaskSetHandle(const core::TaskSetHandleParams& params) {
  return Transact([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(Task before, LockLiveTask(conn, params.id));
    RETURN_IF_ERROR(CheckCurrentAttempt(before, params.attempt));
    Task after = before;
    after.handle = params.handle;
    if (params.instance_id.has_value()) after.instance_id = params.instance_id;
    std::optional<EventSpec> event;
    if (!params.message.empty()) {
      event = EventSpec{.at = params.now, .node = after.lease_owner, .message = params.message};
    }
    return CasUpdateTask(conn, before, after, event);
  });
}

Status PostgresStore::TaskMarkRunning(const core::TaskMarkRunningParams& params) {
  return Transact([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(Task before, LockLiveTask(conn, params.id));
    if (before.state != TaskState::kProvisioning || before.attempt != params.attempt) {
      return core::AbortedError("task " + params.id + " is not provisioning in attempt " +
                                std::to_string(params.attempt));
    }
    Task after = before;
    after.state = TaskState::kRunning;
    return CasUpdateTask(conn, before, after,
                         EventSpec{.at = params.now,
                                   .node = after.lease_owner,
                                   .message = MessageOr(params.message, "running")});
  });
}

Status PostgresStore::TaskFinish(const core::TaskFinishParams& params) {
  RETURN_IF_ERROR(core::CheckFinishState(params));
  return Transact([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(Task before, LockLiveTask(conn, params.id));
    RETURN_IF_ERROR(CheckCurrentAttempt(before, params.attempt));
    Task after = before;
    core::ApplyFinish(params, after);
    return CasUpdateTask(conn, before, after,
                         EventSpec{.at = params.now,
                                   .node = params.node,
                                   .message = core::FinishEventMessage(params)});
  });
}

std::vector<Status> PostgresStore::TaskFinishMany(
    const std::vector<core::TaskFinishParams>& batch) {
  std::vector<Status> out(batch.size());
  std::vector<std::string> ids, states, messages;
  std::vector<int> attempts;
  std::vector<std::optional<int64_t>> exit_codes, at_us;
  std::vector<std::optional<std::string>> outputs, errors;
  std::vector<size_t> index;  // of each row sent, in `batch`
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& p = batch[i];
    if (Status state_ok = core::CheckFinishState(p); !state_ok.ok()) {
      out[i] = std::move(state_ok);
      continue;
    }
    if (Status id_ok = CheckTaskId(p.id); !id_ok.ok()) {
      out[i] = std::move(id_ok);
      continue;
    }
    index.push_back(i);
    ids.push_back(p.id);
    attempts.push_back(p.attempt);
    states.emplace_back(core::TaskStateName(p.state));
    exit_codes.push_back(p.result ? std::optional<int64_t>(p.result->exit_code) : std::nullopt);
    outputs.push_back(p.result ? std::optional<std::string>(p.result->output) : std::nullopt);
    errors.push_back(p.error);
    messages.push_back(core::FinishEventMessage(p));
    at_us.push_back(core::ToMicros(p.now));
  }
  if (index.empty()) return out;
  std::vector<std::optional<std::string>> node_or_null;
  for (size_t k = 0; k < index.size(); ++k) {
    node_or_null.push_back(batch[index[k]].node);
  }
  auto applied = Run([&](Connection& conn) -> StatusOr<std::set<std::string>> {
    Params p;
    p.Add(TextArrayLiteral(ids))
        .Add(IntArrayLiteral(attempts))
        .Add(TextArrayLiteral(states))
        .Add(postgres_internal::NullableInt64ArrayLiteral(exit_codes))
        .Add(NullableTextArrayLiteral(outputs))
        .Add(postgres_internal::NullableTextArrayLiteral(errors))
        .Add(postgres_internal::NullableTextArrayLiteral(node_or_null))
        .Add(TextArrayLiteral(messages))
        .Add(NullableInt64ArrayLiteral(at_us));
    ASSIGN_OR_RETURN(Result r, conn.Exec(kFinishManySql, p, "finish tasks"));
    std::set<std::string> done;
    for (int i = 0; i < r.rows(); ++i) done.emplace(r.Text(i, 0));
    return done;
  });
  if (!applied.ok()) {
    for (size_t i : index) out[i] = applied.status();
    return out;
  }
  // The rows that did not apply: gone (kNotFound) or fenced out (kAborted).
  std::vector<std::string> missed;
  for (size_t k = 0; k < index.size(); ++k) {
    if (!applied->count(ids[k])) missed.push_back(ids[k]);
  }
  std::set<std::string> live;
  if (!missed.empty()) {
    auto found = Run([&](Connection& conn) -> StatusOr<std::set<std::string>> {
      ASSIGN_OR_RETURN(Result r, conn.Exec(kLiveIdsSql, Params().Add(TextArrayLiteral(missed)),
                                           "find live tasks"));
      std::set<std::string> s;
      for (int i = 0; i < r.rows(); ++i) s.emplace(r.Text(i, 0));
      return s;
    });
    if (found.ok()) live = std::move(*found);
  }
  for (size_t k = 0; k < index.size(); ++k) {
    const size_t i = index[k];
    if (applied->count(ids[k])) continue;  // OK
    if (!live.count(ids[k])) {
      out[i] = core::NotFoundError("task " + ids[k] + " not found");
    } else {
      out[i] = core::AbortedError("task " + ids[k] + " attempt " + std::to_string(attempts[k]) +
                                  " is no longer current");
    }
  }
  return out;
}

StatusOr<Task> PostgresStore::TaskAdopt(const core::TaskAdoptParams& params) {
  if (params.node.empty()) return core::InvalidArgumentError("node id is empty");
  return Transact([&](Connection& conn) -> StatusOr<Task> {
    ASSIGN_OR_RETURN(Task before, LockLiveTask(conn, params.id));
    RETURN_IF_ERROR(CheckCurrentAttempt(before, params.attempt));
    const bool expired = !before.lease_expires_at || *before.lease_expires_at < params.now;
    if (!expired && before.lease_owner != params.node) {
      return core::AbortedError("task " + params.id + " is leased to " +
                                before.lease_owner.value_or("?"));
    }
    Task after = before;
    after.lease_owner = params.node;
    after.lease_expires_at = params.now + params.lease;
    RETURN_IF_ERROR(CasUpdateTask(
        conn, before, after,
        EventSpec{.at = params.now, .node = params.node, .message = "adopted by " + params.node}));
    return after;
  });
}

StatusOr<Task> PostgresStore::TaskRetry(const core::TaskRetryParams& params) {
  return Transact([&](Connection& conn) -> StatusOr<Task> {
    ASSIGN_OR_RETURN(Task before, LockLiveTask(conn, params.id));
    RETURN_IF_ERROR(CheckCurrentAttempt(before, params.attempt));
    Task after = before;
    after.free_attempts = before.free_attempts + (params.free ? 1 : 0);
    after.error = params.error;
    if (params.result.has_value()) after.result = params.result;
    core::ClearLease(after);
    std::string fallback;
    if (after.ChargedAttempts() >= after.max_attempts) {
      after.state = TaskState::kFailed;
      after.finished_at = params.now;
      fallback = "failed: no attempts left";
    } else {
      after.state = TaskState::kScheduled;
      after.run_at = params.run_at;
      fallback = "retry scheduled at " + core::FormatRfc3339(params.run_at);
    }
    RETURN_IF_ERROR(CasUpdateTask(conn, before, after,
                                  EventSpec{.at = params.now,
                                            .node = params.node,
                                            .message = MessageOr(params.message, fallback)}));
    if (after.state == TaskState::kScheduled) {
      RETURN_IF_ERROR(Notify(conn, after.run_at));
    }
    return after;
  });
}

StatusOr<Task> PostgresStore::TaskCancel(const core::TaskCancelParams& params) {
  return Transact([&](Connection& conn) -> StatusOr<Task> {
    ASSIGN_OR_RETURN(Task before, LockLiveTask(conn, params.id));
    if (before.state == TaskState::kCancelled) return before;
    if (!core::IsValidTransition(before.state, TaskState::kCancelled)) {
      return core::FailedPreconditionError("task " + params.id + " already " +
                                           std::string(TaskStateName(before.state)));
    }
    Task after = before;
    after.state = TaskState::kCancelled;
    after.finished_at = params.now;
    core::ClearLease(after);
    RETURN_IF_ERROR(CasUpdateTask(conn, before, after,
                                  EventSpec{.at = params.now,
                                            .node = std::nullopt,
                                            .message = MessageOr(params.message, "cancelled")}));
    // The caller stops a running attempt with the lease owner and handle.
    Task out = std::move(before);
    out.state = TaskState::kCancelled;
    out.finished_at = params.now;
    return out;
  });
}

StatusOr<Task> PostgresStore::TaskDelete(const core::TaskCancelParams& params) {
  return Transact([&](Connection& conn) -> StatusOr<Task> {
    ASSIGN_OR_RETURN(Task before, LockLiveTask(conn, params.id));
    ASSIGN_OR_RETURN(Result r,
                     conn.Exec(kDeleteSql, Params().Add(params.now).Add(params.id), "delete task"));
    if (r.affected() != 1) {
      return core::AbortedError("task " + params.id + " changed concurrently");
    }
    // Kept for audit; TaskEventList no longer shows it.
    RETURN_IF_ERROR(AppendEvent(conn, before,
                                EventSpec{.at = params.now,
                                          .node = std::nullopt,
                                          .message = MessageOr(params.message, "deleted")}));
    return before;
  });
}

StatusOr<std::vector<Task>> PostgresStore::TaskRescue(const core::TaskRescueParams& params) {
  if (params.limit <= 0) return std::vector<Task>();
  return Transact([&](Connection& conn) -> StatusOr<std::vector<Task>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kRescueSql,
                                         Params()
                                             .Add(params.now)
                                             .Add(params.limit)
                                             .Add(params.now - params.handle_grace),
                                         "rescue expired leases"));
    ASSIGN_OR_RETURN(std::vector<Task> rescued, ReadTasks(r));
    std::optional<Time> earliest;
    for (const Task& t : rescued) {
      if (t.state == TaskState::kScheduled && (!earliest || t.run_at < *earliest)) {
        earliest = t.run_at;
      }
    }
    if (earliest.has_value()) RETURN_IF_ERROR(Notify(conn, *earliest));
    return rescued;
  });
}

StatusOr<std::vector<TaskEvent>> PostgresStore::TaskEventList(const std::string& id) {
  RETURN_IF_ERROR(CheckTaskId(id));
  return Run([&](Connection& conn) -> StatusOr<std::vector<TaskEvent>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kEventListSql, Params().Add(id), "list task events"));
    if (r.rows() == 0) return core::NotFoundError("task " + id + " not found");
    std::vector<TaskEvent> events;
    for (int i = 0; i < r.rows(); ++i) {
      if (r.IsNull(i, 0)) continue;
      TaskEvent e;
      e.at = core::TimeFromMicros(r.Int(i, 1));
      ASSIGN_OR_RETURN(e.state, StateFromText(r.Text(i, 2)));
      e.attempt = static_cast<int>(r.Int(i, 3));
      e.node = r.OptText(i, 4);
      e.instance_id = r.OptText(i, 5);
      e.message = r.Text(i, 6);
      events.push_back(std::move(e));
    }
    return events;
  });
}

StatusOr<std::map<TaskState, int64_t>> PostgresStore::TaskCountByState() {
  return Run([&](Connection& conn) -> StatusOr<std::map<TaskState, int64_t>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kCountByStateSql, Params(), "count tasks"));
    // Every state is present, with 0 when no task is in it.
    std::map<TaskState, int64_t> counts;
    for (TaskState s : {TaskState::kScheduled, TaskState::kProvisioning, TaskState::kRunning,
                        TaskState::kSucceeded, TaskState::kFailed, TaskState::kCancelled}) {
      counts[s] = 0;
    }
    for (int i = 0; i < r.rows(); ++i) {
      ASSIGN_OR_RETURN(TaskState s, StateFromText(r.Text(i, 0)));
      counts[s] = r.Int(i, 1);
    }
    return counts;
  });
}

// --- Nodes and leadership ----------------------------------------------------

Status PostgresStore::NodeHeartbeat(const NodeInfo& node) {
  if (node.id.empty()) return core::InvalidArgumentError("node id is empty");
  return Run([&](Connection& conn) -> Status {
    return conn
        .Exec(kNodeHeartbeatSql,
              Params()
                  .Add(node.id)
                  .Add(node.version)
                  .Add(node.started_at)
                  .Add(node.last_heartbeat)
                  .Add(node.concurrency),
              "record node heartbeat")
        .status();
  });
}

StatusOr<std::vector<NodeInfo>> PostgresStore::NodeList() {
  return Run([&](Connection& conn) -> StatusOr<std::vector<NodeInfo>> {
    ASSIGN_OR_RETURN(Result r, conn.Exec(kNodeListSql, Params(), "list nodes"));
    std::vector<NodeInfo> nodes;
    for (int i = 0; i < r.rows(); ++i) {
      nodes.push_back(NodeInfo{.id = std::string(r.Text(i, 0)),
                               .version = std::string(r.Text(i, 1)),
                               .started_at = core::TimeFromMicros(r.Int(i, 2)),
                               .last_heartbeat = core::TimeFromMicros(r.Int(i, 3)),
                               .concurrency = static_cast<int>(r.Int(i, 4))});
    }
    return nodes;
  });
}

StatusOr<int64_t> PostgresStore::NodePrune(Time silent_since) {
  return Run([&](Connection& conn) -> StatusOr<int64_t> {
    ASSIGN_OR_RETURN(Result r,
                     conn.Exec(kNodePruneSql, Params().Add(silent_since), "prune nodes"));
    return r.affected();
  });
}

StatusOr<std::string> PostgresStore::SettingInit(const std::string& key,
                                                 const std::string& value) {
  if (key.empty()) return core::InvalidArgumentError("setting key is empty");
  return Run([&](Connection& conn) -> StatusOr<std::string> {
    ASSIGN_OR_RETURN(Result r,
                     conn.Exec(kSettingInitSql, Params().Add(key).Add(value), "init setting"));
    if (r.rows() < 1) return core::InternalError("setting " + key + " neither inserted nor found");
    return std::string(r.Text(0, 0));
  });
}

StatusOr<bool> PostgresStore::LeaderElect(const std::string& node, Time now, Duration ttl) {
  if (node.empty()) return core::InvalidArgumentError("node id is empty");
  if (ttl <= Duration::zero()) return core::InvalidArgumentError("leader ttl must be positive");
  return Run([&](Connection& conn) -> StatusOr<bool> {
    ASSIGN_OR_RETURN(
        Result r,
        conn.Exec(kLeaderElectSql, Params().Add(node).Add(now).Add(now + ttl), "elect leader"));
    return r.rows() == 1;
  });
}

Status PostgresStore::LeaderResign(const std::string& node) {
  return Run([&](Connection& conn) -> Status {
    return conn.Exec(kLeaderResignSql, Params().Add(node), "resign leader").status();
  });
}

// --- Wake-ups across nodes ---------------------------------------------------

void PostgresStore::TaskSubscribeDue(std::function<void(Time)> fn) {
  const bool active = static_cast<bool>(fn);
  {
    MutexLock lock(&subscriber_mu_);
    subscriber_ = std::move(fn);
  }
  std::unique_ptr<Listener> stopped;
  {
    MutexLock lock(&listener_mu_);
    if (active && listener_ == nullptr) {
      listener_ = std::make_unique<Listener>(
          config_, kDueChannel, [this](std::optional<std::string> payload) { OnDue(payload); });
    } else if (!active) {
      stopped = std::move(listener_);
    }
  }
  stopped.reset();  // joins the thread, which may be waiting for OnDue's lock
}

void PostgresStore::OnDue(const std::optional<std::string>& payload) {
  Time at{};
  if (payload.has_value()) {
    int64_t us = 0;
    const char* end = payload->data() + payload->size();
    auto [ptr, ec] = std::from_chars(payload->data(), end, us);
    if (ec == std::errc() && ptr == end) at = core::TimeFromMicros(us);
  }
  MutexLock lock(&subscriber_mu_);
  if (subscriber_) subscriber_(at);
}

// --- Health ------------------------------------------------------------------

Status PostgresStore::Ping() {
  return Run(
      [&](Connection& conn) -> Status { return conn.Exec("SELECT 1", Params(), "ping").status(); });
}

}  // namespace

StatusOr<std::unique_ptr<core::Store>> OpenPostgresStore(const PostgresOptions& options) {
  if (options.dsn.empty()) return core::InvalidArgumentError("postgres: dsn is empty");
  if (!ValidSchemaName(options.schema)) {
    return core::InvalidArgumentError(
        "postgres: schema must be 1 to 63 letters, digits or '_', not "
        "starting with a digit");
  }
  if (options.pool_size < 1 || options.pool_size > kMaxPostgresPoolSize) {
    return core::InvalidArgumentError("postgres: pool_size must be 1 to " +
                                      std::to_string(kMaxPostgresPoolSize));
  }
  if (options.checkout_timeout.count() <= 0) {
    return core::InvalidArgumentError("postgres: checkout_timeout must be positive");
  }
  if (options.connect_timeout.count() < 1) {
    return core::InvalidArgumentError("postgres: connect_timeout must be at least 1 s");
  }
  if (options.notify_horizon.count() < 0) {
    return core::InvalidArgumentError("postgres: notify_horizon must not be negative");
  }
  if (options.limited_queues_recheck.count() <= 0) {
    return core::InvalidArgumentError("postgres: limited_queues_recheck must be positive");
  }
  if (options.statement_timeout.count() < 0) {
    return core::InvalidArgumentError("postgres: statement_timeout must not be negative");
  }
  {
    // Rejects a malformed dsn before connecting; libpq's message may quote
    // the dsn, password included, so it is not passed on.
    char* error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(options.dsn.c_str(), &error);
    if (error != nullptr) PQfreemem(error);
    if (parsed == nullptr) {
      return core::InvalidArgumentError("postgres: dsn is malformed");
    }
    PQconninfoFree(parsed);
  }

  const ConnectConfig config{.dsn = options.dsn,
                             .schema = options.schema,
                             .connect_timeout = options.connect_timeout,
                             .statement_timeout = options.statement_timeout};
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(config));
  RETURN_IF_ERROR(
      postgres_internal::Migrate(*conn, options.schema, postgres_internal::EmbeddedMigrations()));
  auto store = std::make_unique<PostgresStore>(config, options);
  store->AdoptConnection(std::move(conn));
  return std::unique_ptr<core::Store>(std::move(store));
}

}  // namespace sked::store
