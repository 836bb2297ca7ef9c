#include "store/sqlite/sqlite_store.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/task.h"
#include "store/sqlite/internal/connection.h"
#include "store/internal/json_columns.h"
#include "store/sqlite/internal/migrations.h"
#include "store/sqlite/internal/thread_annotations.h"

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
using sqlite_internal::Connection;
using sqlite_internal::Mutex;
using sqlite_internal::MutexLock;
using sqlite_internal::Statement;
using sqlite_internal::Transaction;

constexpr std::string_view kMemoryPath = ":memory:";

// --- Row mapping -------------------------------------------------------------

// Every task column, in the order ReadTask() reads them.
#define SKED_TASK_COLUMNS                                                  \
  "id, type, runner, queue, run_at, state, image, command, env, attempt, " \
  "max_attempts, free_attempts, timeout_s, idempotency_key, labels, "      \
  "notify_url, schedule_id, occurrence, created_at, started_at, "          \
  "finished_at, instance_id, result_exit_code, result_output, error, "     \
  "lease_owner, lease_expires_at, handle"

std::optional<int64_t> Micros(const std::optional<Time>& t) {
  if (!t.has_value()) return std::nullopt;
  return core::ToMicros(*t);
}

std::optional<Time> OptTime(const Statement& st, int col) {
  if (st.IsNull(col)) return std::nullopt;
  return core::TimeFromMicros(st.Int(col));
}

StatusOr<TaskState> StateFromText(const std::string& text) {
  std::optional<TaskState> s = core::ParseTaskState(text);
  if (!s.has_value())
    return core::InternalError("sqlite: stored task has an unknown state");
  return *s;
}

// Decodes the current row of a statement that selected SKED_TASK_COLUMNS.
StatusOr<Task> ReadTask(const Statement& st) {
  Task t;
  t.id = st.Text(0);
  t.type = st.Text(1);
  t.runner = st.Text(2);
  t.queue = st.Text(3);
  t.run_at = core::TimeFromMicros(st.Int(4));
  ASSIGN_OR_RETURN(t.state, StateFromText(st.Text(5)));
  t.image = st.Text(6);
  ASSIGN_OR_RETURN(t.command, store_internal::DecodeStringList(st.Text(7)));
  ASSIGN_OR_RETURN(t.env, store_internal::DecodeStringMap(st.Text(8)));
  t.attempt = static_cast<int>(st.Int(9));
  t.max_attempts = static_cast<int>(st.Int(10));
  t.free_attempts = static_cast<int>(st.Int(11));
  t.timeout_s = st.Int(12);
  t.idempotency_key = st.OptText(13);
  ASSIGN_OR_RETURN(t.labels, store_internal::DecodeStringMap(st.Text(14)));
  t.notify_url = st.OptText(15);
  t.schedule_id = st.OptText(16);
  t.occurrence = OptTime(st, 17);
  t.created_at = core::TimeFromMicros(st.Int(18));
  t.started_at = OptTime(st, 19);
  t.finished_at = OptTime(st, 20);
  t.instance_id = st.OptText(21);
  if (!st.IsNull(22)) {
    t.result = core::TaskResult{.exit_code = static_cast<int>(st.Int(22)),
                                .output = st.OptText(23).value_or("")};
  }
  t.error = st.OptText(24);
  t.lease_owner = st.OptText(25);
  t.lease_expires_at = OptTime(st, 26);
  t.handle = st.OptText(27);
  return t;
}

// Reads every row of `st` as a task.
StatusOr<std::vector<Task>> ReadTasks(Statement& st) {
  std::vector<Task> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    ASSIGN_OR_RETURN(Task t, ReadTask(st));
    out.push_back(std::move(t));
  }
}

// --- Task helpers; each runs on the caller's connection and transaction ------

// The live (not deleted) task `id`, or nullopt.
StatusOr<std::optional<Task>> FindLiveTask(Connection& conn,
                                           const std::string& id) {
  ASSIGN_OR_RETURN(
      Statement st,
      conn.Prepare("SELECT " SKED_TASK_COLUMNS
                   " FROM tasks WHERE id = ? AND deleted_at IS NULL",
                   "get task"));
  st.Bind(id);
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Task>();
  ASSIGN_OR_RETURN(Task t, ReadTask(st));
  return std::optional<Task>(std::move(t));
}

// The live task `id`; kNotFound if absent or deleted.
StatusOr<Task> LoadLiveTask(Connection& conn, const std::string& id) {
  ASSIGN_OR_RETURN(std::optional<Task> t, FindLiveTask(conn, id));
  if (!t.has_value()) return core::NotFoundError("task " + id + " not found");
  return std::move(*t);
}

StatusOr<std::optional<Task>> FindLiveTaskByIdempotencyKey(
    Connection& conn, const std::string& key) {
  ASSIGN_OR_RETURN(Statement st,
                   conn.Prepare("SELECT " SKED_TASK_COLUMNS
                                " FROM tasks WHERE idempotency_key = ? "
                                "AND deleted_at IS NULL",
                                "find task by idempotency key"));
  st.Bind(key);
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Task>();
  ASSIGN_OR_RETURN(Task t, ReadTask(st));
  return std::optional<Task>(std::move(t));
}

// Appends one history line for `t` as it now is.
Status AppendEvent(Connection& conn, const Task& t, Time at,
                   const std::optional<std::string>& node,
                   std::string_view message) {
  ASSIGN_OR_RETURN(
      Statement st,
      conn.Prepare("INSERT INTO task_events "
                   "(task_id, at, state, attempt, node, instance_id, message) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   "append task event"));
  st.Bind(t.id)
      .Bind(core::ToMicros(at))
      .Bind(core::TaskStateName(t.state))
      .Bind(t.attempt)
      .Bind(node)
      .Bind(t.instance_id)
      .Bind(message);
  return st.Run();
}

Status InsertTaskRow(Connection& conn, const Task& t) {
  ASSIGN_OR_RETURN(Statement st,
                   conn.Prepare("INSERT INTO tasks (" SKED_TASK_COLUMNS
                                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                "?, ?, ?, ?, ?, ?)",
                                "insert task"));
  st.Bind(t.id)
      .Bind(t.type)
      .Bind(t.runner)
      .Bind(t.queue)
      .Bind(core::ToMicros(t.run_at))
      .Bind(core::TaskStateName(t.state))
      .Bind(t.image)
      .Bind(store_internal::EncodeStringList(t.command))
      .Bind(store_internal::EncodeStringMap(t.env))
      .Bind(t.attempt)
      .Bind(t.max_attempts)
      .Bind(t.free_attempts)
      .Bind(t.timeout_s)
      .Bind(t.idempotency_key)
      .Bind(store_internal::EncodeStringMap(t.labels))
      .Bind(t.notify_url)
      .Bind(t.schedule_id)
      .Bind(Micros(t.occurrence))
      .Bind(core::ToMicros(t.created_at))
      .Bind(Micros(t.started_at))
      .Bind(Micros(t.finished_at))
      .Bind(t.instance_id);
  if (t.result.has_value()) {
    st.Bind(t.result->exit_code).Bind(t.result->output);
  } else {
    st.BindNull().BindNull();
  }
  st.Bind(t.error)
      .Bind(t.lease_owner)
      .Bind(Micros(t.lease_expires_at))
      .Bind(t.handle);
  Status s = st.Run();
  if (s.code() == core::StatusCode::kAlreadyExists) {
    return core::AlreadyExistsError("task " + t.id + " already exists");
  }
  return s;
}

// Compare-and-set: writes the mutable fields of `after` if the row is still
// live in `before`'s state and attempt. kAborted when it is not (a lost race).
Status CasUpdateTask(Connection& conn, const Task& before, const Task& after) {
  if (before.state != after.state &&
      !core::IsValidTransition(before.state, after.state)) {
    return core::FailedPreconditionError(
        "task " + before.id + ": cannot move from " +
        std::string(TaskStateName(before.state)) + " to " +
        std::string(TaskStateName(after.state)));
  }
  ASSIGN_OR_RETURN(
      Statement st,
      conn.Prepare(
          "UPDATE tasks SET state = ?, run_at = ?, attempt = ?, "
          "free_attempts = ?, started_at = ?, finished_at = ?, "
          "instance_id = ?, result_exit_code = ?, result_output = ?, "
          "error = ?, lease_owner = ?, lease_expires_at = ?, handle = ? "
          "WHERE id = ? AND state = ? AND attempt = ? "
          "AND deleted_at IS NULL",
          "update task"));
  st.Bind(core::TaskStateName(after.state))
      .Bind(core::ToMicros(after.run_at))
      .Bind(after.attempt)
      .Bind(after.free_attempts)
      .Bind(Micros(after.started_at))
      .Bind(Micros(after.finished_at))
      .Bind(after.instance_id);
  if (after.result.has_value()) {
    st.Bind(after.result->exit_code).Bind(after.result->output);
  } else {
    st.BindNull().BindNull();
  }
  st.Bind(after.error)
      .Bind(after.lease_owner)
      .Bind(Micros(after.lease_expires_at))
      .Bind(after.handle)
      .Bind(before.id)
      .Bind(core::TaskStateName(before.state))
      .Bind(before.attempt);
  RETURN_IF_ERROR(st.Run());
  if (conn.Changes() != 1) {
    return core::AbortedError("task " + before.id + " changed concurrently");
  }
  return core::OkStatus();
}

bool IsActive(TaskState s) {
  return s == TaskState::kProvisioning || s == TaskState::kRunning;
}

// Fencing for calls that act on one attempt: OK only while the task is
// provisioning or running in `attempt`.
Status CheckCurrentAttempt(const Task& t, int attempt) {
  if (!IsActive(t.state) || t.attempt != attempt) {
    return core::AbortedError("task " + t.id + " attempt " +
                              std::to_string(attempt) +
                              " is no longer current");
  }
  return core::OkStatus();
}

std::string MessageOr(const std::string& message, std::string_view fallback) {
  return message.empty() ? std::string(fallback) : message;
}

// Inserts one task, or returns the live task holding its idempotency key.
StatusOr<core::TaskInsertResult> InsertOne(Connection& conn, const Task& task) {
  if (task.id.empty()) return core::InvalidArgumentError("task id is empty");
  if (task.idempotency_key.has_value()) {
    ASSIGN_OR_RETURN(std::optional<Task> existing,
                     FindLiveTaskByIdempotencyKey(conn, *task.idempotency_key));
    if (existing.has_value()) {
      return core::TaskInsertResult{.task = std::move(*existing),
                                    .inserted = false};
    }
  }
  // A new task starts fresh whatever the caller left in the run-time fields.
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
  RETURN_IF_ERROR(InsertTaskRow(conn, t));
  RETURN_IF_ERROR(AppendEvent(conn, t, t.created_at, std::nullopt, "created"));
  return core::TaskInsertResult{.task = std::move(t), .inserted = true};
}

// --- Schedules ---------------------------------------------------------------

#define SKED_SCHEDULE_COLUMNS                                                   \
  "id, cron, timezone, task_type, runner, queue, image, command, env, "         \
  "max_attempts, timeout_s, labels, task_notify_url, overlap, catch_up, "       \
  "notify_url, paused, next_run_at, created_at, updated_at"

StatusOr<core::Schedule> ReadSchedule(const Statement& st) {
  core::Schedule s;
  s.id = st.Text(0);
  s.cron = st.Text(1);
  s.timezone = st.Text(2);
  s.task.type = st.Text(3);
  s.task.runner = st.Text(4);
  s.task.queue = st.Text(5);
  s.task.image = st.Text(6);
  ASSIGN_OR_RETURN(s.task.command, store_internal::DecodeStringList(st.Text(7)));
  ASSIGN_OR_RETURN(s.task.env, store_internal::DecodeStringMap(st.Text(8)));
  s.task.max_attempts = static_cast<int>(st.Int(9));
  s.task.timeout_s = st.Int(10);
  ASSIGN_OR_RETURN(s.task.labels, store_internal::DecodeStringMap(st.Text(11)));
  s.task.notify_url = st.OptText(12);
  std::optional<core::OverlapPolicy> overlap = core::ParseOverlapPolicy(st.Text(13));
  std::optional<core::CatchUpPolicy> catch_up = core::ParseCatchUpPolicy(st.Text(14));
  if (!overlap || !catch_up) return core::InternalError("sqlite: stored schedule has a bad policy");
  s.overlap = *overlap;
  s.catch_up = *catch_up;
  s.notify_url = st.OptText(15);
  s.paused = st.Int(16) != 0;
  s.next_run_at = OptTime(st, 17);
  s.created_at = core::TimeFromMicros(st.Int(18));
  s.updated_at = core::TimeFromMicros(st.Int(19));
  return s;
}

// Every row `st` yields.
StatusOr<std::vector<core::Schedule>> ReadSchedules(Statement& st) {
  std::vector<core::Schedule> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    ASSIGN_OR_RETURN(core::Schedule s, ReadSchedule(st));
    out.push_back(std::move(s));
  }
}

StatusOr<std::optional<core::Schedule>> FindSchedule(Connection& conn, const std::string& id) {
  ASSIGN_OR_RETURN(Statement st,
                   conn.Prepare("SELECT " SKED_SCHEDULE_COLUMNS " FROM schedules WHERE id = ?",
                                "get schedule"));
  st.Bind(id);
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<core::Schedule>();
  ASSIGN_OR_RETURN(core::Schedule s, ReadSchedule(st));
  return std::optional<core::Schedule>(std::move(s));
}

// --- Result plumbing ---------------------------------------------------------

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const StatusOr<T>& s) {
  return s.status();
}

// --- The store ---------------------------------------------------------------

// Thread safety: safe for concurrent use. Writes serialise on writer_mu_;
// each read connection has its own mutex.
class SqliteStore final : public core::Store {
 public:
  static StatusOr<std::unique_ptr<SqliteStore>> Open(
      const SqliteOptions& options);

  StatusOr<core::TaskInsertResult> TaskInsert(const Task& task) override;
  StatusOr<std::vector<core::TaskInsertResult>> TaskInsertMany(
      const std::vector<Task>& tasks) override;
  StatusOr<Task> TaskGet(const std::string& id) override;
  bool TaskGetAsync(const std::string& id,
                    std::function<void(StatusOr<Task>)> done) override;
  StatusOr<core::TaskPage> TaskList(
      const core::TaskListParams& params) override;
  StatusOr<std::vector<Task>> TaskClaim(
      const core::TaskClaimParams& params) override;
  StatusOr<std::optional<Time>> TaskNextRunAt(
      const std::vector<std::string>& runners) override;
  StatusOr<std::vector<core::TaskLeaseRef>> TaskLeaseRenew(
      const core::TaskLeaseRenewParams& params) override;
  Status TaskSetHandle(const core::TaskSetHandleParams& params) override;
  Status TaskMarkRunning(const core::TaskMarkRunningParams& params) override;
  Status TaskFinish(const core::TaskFinishParams& params) override;
  StatusOr<Task> TaskRetry(const core::TaskRetryParams& params) override;
  StatusOr<Task> TaskCancel(const core::TaskCancelParams& params) override;
  StatusOr<Task> TaskDelete(const core::TaskCancelParams& params) override;
  StatusOr<Task> TaskAdopt(const core::TaskAdoptParams& params) override;
  StatusOr<std::vector<Task>> TaskRescue(
      const core::TaskRescueParams& params) override;
  StatusOr<std::vector<TaskEvent>> TaskEventList(
      const std::string& id) override;
  StatusOr<std::map<TaskState, int64_t>> TaskCountByState() override;
  Status NodeHeartbeat(const NodeInfo& node) override;
  StatusOr<std::vector<NodeInfo>> NodeList() override;
  StatusOr<int64_t> NodePrune(Time silent_since) override;
  StatusOr<bool> LeaderElect(const std::string& node, Time now,
                             Duration ttl) override;
  Status LeaderResign(const std::string& node) override;
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
  struct Reader {
    Mutex mu;
    std::unique_ptr<Connection> conn SKED_PT_GUARDED_BY(mu);
  };

  explicit SqliteStore(std::unique_ptr<Connection> writer)
      : writer_(std::move(writer)) {}

  // Runs fn(conn) on the writer inside BEGIN IMMEDIATE; commits when it
  // returns OK, rolls back otherwise. Returns fn's result, or the commit error.
  template <typename Fn>
  std::invoke_result_t<Fn, Connection&> Write(Fn&& fn)
      SKED_LOCKS_EXCLUDED(writer_mu_);

  // Runs fn(conn) in a read transaction (one consistent snapshot) on a free
  // read connection, or on the writer when there are none.
  template <typename Fn>
  std::invoke_result_t<Fn, Connection&> Read(Fn&& fn)
      SKED_LOCKS_EXCLUDED(writer_mu_);

  template <typename Fn>
  static std::invoke_result_t<Fn, Connection&> InReadTransaction(
      Connection& conn, Fn& fn);

  Mutex writer_mu_;
  std::unique_ptr<Connection> writer_ SKED_PT_GUARDED_BY(writer_mu_);
  // Declared after writer_ so they close first; the writer's close then
  // checkpoints the WAL.
  std::vector<std::unique_ptr<Reader>> readers_;
  std::atomic<size_t> next_reader_{0};
};

template <typename Fn>
std::invoke_result_t<Fn, Connection&> SqliteStore::Write(Fn&& fn) {
  MutexLock lock(&writer_mu_);
  StatusOr<Transaction> txn = Transaction::Begin(*writer_, /*immediate=*/true);
  if (!txn.ok()) return txn.status();
  auto result = fn(*writer_);
  if (!StatusOf(result).ok()) return result;  // ~Transaction rolls back
  Status committed = txn->Commit();
  if (!committed.ok()) return committed;
  return result;
}

template <typename Fn>
std::invoke_result_t<Fn, Connection&> SqliteStore::InReadTransaction(
    Connection& conn, Fn& fn) {
  StatusOr<Transaction> txn = Transaction::Begin(conn, /*immediate=*/false);
  if (!txn.ok()) return txn.status();
  auto result = fn(conn);
  if (!StatusOf(result).ok()) return result;
  Status committed = txn->Commit();
  if (!committed.ok()) return committed;
  return result;
}

template <typename Fn>
std::invoke_result_t<Fn, Connection&> SqliteStore::Read(Fn&& fn) {
  if (readers_.empty()) {
    MutexLock lock(&writer_mu_);
    return InReadTransaction(*writer_, fn);
  }
  // Take the first free reader, starting at a rotating index; wait on the
  // starting one when all are busy.
  const size_t n = readers_.size();
  const size_t start = next_reader_.fetch_add(1, std::memory_order_relaxed) % n;
  for (size_t i = 0; i < n; ++i) {
    Reader& r = *readers_[(start + i) % n];
    if (r.mu.TryLock()) {
      auto result = InReadTransaction(*r.conn, fn);
      r.mu.Unlock();
      return result;
    }
  }
  Reader& r = *readers_[start];
  MutexLock lock(&r.mu);
  return InReadTransaction(*r.conn, fn);
}

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(
    const SqliteOptions& options) {
  if (options.path.empty())
    return core::InvalidArgumentError("sqlite: path is empty");
  if (options.read_connections < 0 ||
      options.read_connections > kMaxSqliteReadConnections) {
    return core::InvalidArgumentError(
        "sqlite: read_connections must be 0 to " +
        std::to_string(kMaxSqliteReadConnections));
  }
  if (options.busy_timeout.count() < 0 ||
      options.busy_timeout.count() > std::numeric_limits<int>::max()) {
    return core::InvalidArgumentError("sqlite: busy_timeout out of range");
  }
  const bool in_memory = options.path == kMemoryPath;
  const int busy_ms = static_cast<int>(options.busy_timeout.count());

  if (!in_memory) {
    std::filesystem::path parent =
        std::filesystem::path(options.path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return core::InternalError("sqlite: cannot create directory " +
                                   parent.string() + ": " + ec.message());
      }
    }
  }

  ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> writer,
      Connection::Open(options.path, /*read_only=*/false, busy_ms));
  if (!in_memory) {
    // journal_mode answers with the mode now in force.
    ASSIGN_OR_RETURN(Statement st, writer->Prepare("PRAGMA journal_mode = WAL",
                                                   "enable WAL"));
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row || st.Text(0) != "wal") {
      return core::FailedPreconditionError("sqlite: cannot enable WAL for " +
                                           options.path);
    }
  }
  RETURN_IF_ERROR(
      writer->Exec("PRAGMA synchronous = NORMAL", "set synchronous"));
  RETURN_IF_ERROR(
      writer->Exec("PRAGMA foreign_keys = ON", "enable foreign keys"));
  RETURN_IF_ERROR(
      sqlite_internal::Migrate(*writer, sqlite_internal::EmbeddedMigrations()));

  auto store = std::unique_ptr<SqliteStore>(new SqliteStore(std::move(writer)));
  if (!in_memory) {
    for (int i = 0; i < options.read_connections; ++i) {
      auto reader = std::make_unique<Reader>();
      ASSIGN_OR_RETURN(
          reader->conn,
          Connection::Open(options.path, /*read_only=*/true, busy_ms));
      store->readers_.push_back(std::move(reader));
    }
  }
  return store;
}

// --- Tasks -------------------------------------------------------------------

StatusOr<core::TaskInsertResult> SqliteStore::TaskInsert(const Task& task) {
  return Write([&](Connection& conn) { return InsertOne(conn, task); });
}

StatusOr<std::vector<core::TaskInsertResult>> SqliteStore::TaskInsertMany(
    const std::vector<Task>& tasks) {
  return Write(
      [&](Connection& conn) -> StatusOr<std::vector<core::TaskInsertResult>> {
        std::vector<core::TaskInsertResult> out;
        out.reserve(tasks.size());
        for (const Task& t : tasks) {
          // A key repeated within the batch finds the earlier element, which
          // this transaction has already written.
          ASSIGN_OR_RETURN(core::TaskInsertResult r, InsertOne(conn, t));
          out.push_back(std::move(r));
        }
        return out;
      });
}

StatusOr<Task> SqliteStore::TaskGet(const std::string& id) {
  return Read([&](Connection& conn) { return LoadLiveTask(conn, id); });
}

// Answered at once on the caller's thread, when a read connection is free:
// in WAL mode a reader never waits for the writer, and taking only a free
// one means never waiting for another read. Otherwise declined.
bool SqliteStore::TaskGetAsync(const std::string& id,
                               std::function<void(StatusOr<Task>)> done) {
  const size_t n = readers_.size();
  if (n == 0) return false;
  const size_t start = next_reader_.fetch_add(1, std::memory_order_relaxed) % n;
  for (size_t i = 0; i < n; ++i) {
    Reader& r = *readers_[(start + i) % n];
    if (!r.mu.TryLock()) continue;
    auto load = [&](Connection& conn) { return LoadLiveTask(conn, id); };
    StatusOr<Task> t = InReadTransaction(*r.conn, load);
    r.mu.Unlock();
    done(std::move(t));
    return true;
  }
  return false;
}

StatusOr<core::TaskPage> SqliteStore::TaskList(
    const core::TaskListParams& params) {
  if (params.limit < 1 || params.limit > 1000) {
    return core::InvalidArgumentError("limit must be 1 to 1000");
  }
  // The SQL depends only on which filters are present; lists travel as JSON
  // parameters, so the number of distinct statements stays small.
  std::string sql =
      "SELECT " SKED_TASK_COLUMNS " FROM tasks WHERE deleted_at IS NULL";
  std::vector<std::string> state_names;
  for (TaskState s : params.states)
    state_names.emplace_back(core::TaskStateName(s));
  if (!params.states.empty())
    sql += " AND state IN (SELECT value FROM json_each(?))";
  if (!params.types.empty())
    sql += " AND type IN (SELECT value FROM json_each(?))";
  if (params.since.has_value()) sql += " AND run_at >= ?";
  if (params.until.has_value()) sql += " AND run_at < ?";
  if (params.queue.has_value()) sql += " AND queue = ?";
  if (params.schedule_id.has_value()) sql += " AND schedule_id = ?";
  if (!params.labels.empty()) {
    // No wanted [key, value] pair is missing from the task's labels.
    sql +=
        " AND NOT EXISTS (SELECT 1 FROM json_each(?) AS want WHERE NOT EXISTS ("
        "SELECT 1 FROM json_each(tasks.labels) AS have "
        "WHERE have.key = json_extract(want.value, '$[0]') "
        "AND have.value = json_extract(want.value, '$[1]')))";
  }
  if (params.after.has_value()) {
    sql += params.ascending ? " AND (run_at, id) > (?, ?)"
                            : " AND (run_at, id) < (?, ?)";
  }
  sql += params.ascending ? " ORDER BY run_at ASC, id ASC"
                          : " ORDER BY run_at DESC, id DESC";
  sql += " LIMIT ?";

  return Read([&](Connection& conn) -> StatusOr<core::TaskPage> {
    ASSIGN_OR_RETURN(Statement st, conn.Prepare(sql, "list tasks"));
    if (!params.states.empty())
      st.Bind(store_internal::EncodeStringList(state_names));
    if (!params.types.empty())
      st.Bind(store_internal::EncodeStringList(params.types));
    if (params.since.has_value()) st.Bind(core::ToMicros(*params.since));
    if (params.until.has_value()) st.Bind(core::ToMicros(*params.until));
    if (params.queue.has_value()) st.Bind(*params.queue);
    if (params.schedule_id.has_value()) st.Bind(*params.schedule_id);
    if (!params.labels.empty())
      st.Bind(store_internal::EncodeStringPairs(params.labels));
    if (params.after.has_value()) {
      st.Bind(core::ToMicros(params.after->run_at)).Bind(params.after->id);
    }
    st.Bind(params.limit + 1);  // one extra row tells whether more follow
    core::TaskPage page;
    ASSIGN_OR_RETURN(page.tasks, ReadTasks(st));
    if (page.tasks.size() > static_cast<size_t>(params.limit)) {
      page.tasks.pop_back();
      page.next = core::TaskListCursor{.run_at = page.tasks.back().run_at,
                                       .id = page.tasks.back().id};
    }
    return page;
  });
}

StatusOr<std::vector<Task>> SqliteStore::TaskClaim(
    const core::TaskClaimParams& params) {
  if (params.limit <= 0 || params.runners.empty()) return std::vector<Task>();
  return Write([&](Connection& conn) -> StatusOr<std::vector<Task>> {
    // What each limited queue may still take: its free running slots and
    // the whole claims in its rate bucket.
    struct Allowance {
      int64_t left = 0;
      std::optional<double> rate;
      double tokens = 0;
      int64_t taken = 0;
    };
    std::map<std::string, Allowance> limited;
    {
      ASSIGN_OR_RETURN(
          Statement st,
          conn.Prepare(
              "SELECT q.name, q.max_running, q.max_per_second, q.bucket_tokens, "
              "q.bucket_at, (SELECT COUNT(*) FROM tasks t WHERE t.queue = q.name "
              "AND t.deleted_at IS NULL AND t.state IN ('provisioning', 'running')) "
              "FROM queues q WHERE q.max_running IS NOT NULL "
              "OR q.max_per_second IS NOT NULL",
              "read queue limits"));
      while (true) {
        ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        Allowance a;
        a.left = std::numeric_limits<int64_t>::max();
        if (!st.IsNull(1)) a.left = std::max<int64_t>(0, st.Int(1) - st.Int(5));
        a.rate = st.OptDouble(2);
        if (a.rate) {
          a.tokens = core::QueueBucketTokens(*a.rate, st.OptDouble(3), OptTime(st, 4),
                                             params.now);
          a.left = std::min(a.left, static_cast<int64_t>(std::floor(a.tokens)));
        }
        limited[st.Text(0)] = a;
      }
    }
    std::vector<Task> claimed;
    // A limited queue that runs out mid-batch is left out of the next round,
    // so it never holds back the due tasks of other queues behind it.
    for (int round = 0; round < 8; ++round) {
      const int want = params.limit - static_cast<int>(claimed.size());
      if (want <= 0) break;
      std::vector<std::string> full;
      for (const auto& [name, a] : limited) {
        if (a.left <= 0) full.push_back(name);
      }
      std::vector<Task> due;
      {
        ASSIGN_OR_RETURN(
            Statement st,
            conn.Prepare("SELECT " SKED_TASK_COLUMNS
                         " FROM tasks WHERE state = 'scheduled' "
                         "AND deleted_at IS NULL AND run_at <= ? "
                         "AND runner IN (SELECT value FROM json_each(?)) "
                         "AND queue NOT IN (SELECT value FROM json_each(?)) "
                         "ORDER BY run_at, id LIMIT ?",
                         "select due tasks"));
        st.Bind(core::ToMicros(params.now))
            .Bind(store_internal::EncodeStringList(params.runners))
            .Bind(store_internal::EncodeStringList(full))
            .Bind(want);
        ASSIGN_OR_RETURN(due, ReadTasks(st));
      }
      bool skipped = false;
      for (const Task& before : due) {
        auto lim = limited.find(before.queue);
        if (lim != limited.end()) {
          if (lim->second.left <= 0) {
            skipped = true;
            continue;
          }
          --lim->second.left;
          ++lim->second.taken;
        }
        Task after = before;
        core::ApplyClaim(params, after);
        if (params.run_instantly) {
          if (std::optional<core::TaskFinishParams> outcome =
                  params.run_instantly(after)) {
            RETURN_IF_ERROR(core::CheckFinishState(*outcome));
            core::ApplyFinish(*outcome, after);
            RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
            RETURN_IF_ERROR(AppendEvent(conn, after, outcome->now, outcome->node,
                                        core::FinishEventMessage(*outcome)));
            claimed.push_back(std::move(after));
            continue;
          }
        }
        RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
        RETURN_IF_ERROR(
            AppendEvent(conn, after, params.now, params.node, "claimed"));
        claimed.push_back(std::move(after));
      }
      if (!skipped) break;
    }
    for (const auto& [name, a] : limited) {
      if (!a.rate || a.taken == 0) continue;
      ASSIGN_OR_RETURN(Statement st,
                       conn.Prepare("UPDATE queues SET bucket_tokens = ?, bucket_at = ? "
                                    "WHERE name = ?",
                                    "save rate bucket"));
      st.Bind(a.tokens - static_cast<double>(a.taken))
          .Bind(core::ToMicros(params.now))
          .Bind(name);
      RETURN_IF_ERROR(st.Run());
    }
    return claimed;
  });
}

StatusOr<core::Schedule> SqliteStore::ScheduleInsert(const core::Schedule& in) {
  if (in.id.empty()) return core::InvalidArgumentError("schedule id is empty");
  return Write([&](Connection& conn) -> StatusOr<core::Schedule> {
    ASSIGN_OR_RETURN(Statement st,
                     conn.Prepare("INSERT INTO schedules (" SKED_SCHEDULE_COLUMNS
                                  ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                  "?, ?, ?)",
                                  "insert schedule"));
    st.Bind(in.id)
        .Bind(in.cron)
        .Bind(in.timezone)
        .Bind(in.task.type)
        .Bind(in.task.runner)
        .Bind(in.task.queue)
        .Bind(in.task.image)
        .Bind(store_internal::EncodeStringList(in.task.command))
        .Bind(store_internal::EncodeStringMap(in.task.env))
        .Bind(in.task.max_attempts)
        .Bind(in.task.timeout_s)
        .Bind(store_internal::EncodeStringMap(in.task.labels))
        .Bind(in.task.notify_url)
        .Bind(core::OverlapPolicyName(in.overlap))
        .Bind(core::CatchUpPolicyName(in.catch_up))
        .Bind(in.notify_url)
        .Bind(in.paused ? 1 : 0)
        .Bind(Micros(in.next_run_at))
        .Bind(core::ToMicros(in.created_at))
        .Bind(core::ToMicros(in.updated_at));
    Status s = st.Run();
    if (s.code() == core::StatusCode::kAlreadyExists) {
      return core::AlreadyExistsError("schedule " + in.id + " already exists");
    }
    RETURN_IF_ERROR(s);
    return in;
  });
}

StatusOr<core::Schedule> SqliteStore::ScheduleGet(const std::string& id) {
  return Read([&](Connection& conn) -> StatusOr<core::Schedule> {
    ASSIGN_OR_RETURN(std::optional<core::Schedule> s, FindSchedule(conn, id));
    if (!s) return core::NotFoundError("schedule " + id + " not found");
    return std::move(*s);
  });
}

StatusOr<core::SchedulePage> SqliteStore::ScheduleList(const core::ScheduleListParams& params) {
  if (params.limit < 1 || params.limit > 1000) {
    return core::InvalidArgumentError("limit must be in 1..1000");
  }
  return Read([&](Connection& conn) -> StatusOr<core::SchedulePage> {
    ASSIGN_OR_RETURN(Statement st,
                     conn.Prepare("SELECT " SKED_SCHEDULE_COLUMNS
                                  " FROM schedules WHERE id > ? ORDER BY id LIMIT ?",
                                  "list schedules"));
    st.Bind(params.after_id.value_or("")).Bind(params.limit + 1);
    core::SchedulePage page;
    ASSIGN_OR_RETURN(page.schedules, ReadSchedules(st));
    if (static_cast<int>(page.schedules.size()) > params.limit) {
      page.schedules.pop_back();
      page.next = page.schedules.back().id;
    }
    return page;
  });
}

Status SqliteStore::ScheduleDelete(const std::string& id) {
  return Write([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(Statement st,
                     conn.Prepare("DELETE FROM schedules WHERE id = ?", "delete schedule"));
    st.Bind(id);
    RETURN_IF_ERROR(st.Run());
    if (conn.Changes() != 1) return core::NotFoundError("schedule " + id + " not found");
    return core::OkStatus();
  });
}

StatusOr<core::Schedule> SqliteStore::ScheduleSetPaused(const std::string& id, bool paused,
                                                        std::optional<Time> next_run_at,
                                                        Time now) {
  return Write([&](Connection& conn) -> StatusOr<core::Schedule> {
    ASSIGN_OR_RETURN(Statement st,
                     conn.Prepare("UPDATE schedules SET paused = ?, next_run_at = ?, "
                                  "updated_at = ? WHERE id = ?",
                                  "pause schedule"));
    st.Bind(paused ? 1 : 0).Bind(Micros(next_run_at)).Bind(core::ToMicros(now)).Bind(id);
    RETURN_IF_ERROR(st.Run());
    if (conn.Changes() != 1) return core::NotFoundError("schedule " + id + " not found");
    ASSIGN_OR_RETURN(std::optional<core::Schedule> s, FindSchedule(conn, id));
    if (!s) return core::NotFoundError("schedule " + id + " not found");
    return std::move(*s);
  });
}

StatusOr<std::vector<core::Schedule>> SqliteStore::ScheduleListDue(Time before, int limit) {
  return Read([&](Connection& conn) -> StatusOr<std::vector<core::Schedule>> {
    ASSIGN_OR_RETURN(Statement st,
                     conn.Prepare("SELECT " SKED_SCHEDULE_COLUMNS
                                  " FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL"
                                  " AND next_run_at <= ? ORDER BY next_run_at, id LIMIT ?",
                                  "list due schedules"));
    st.Bind(core::ToMicros(before)).Bind(limit);
    return ReadSchedules(st);
  });
}

StatusOr<std::optional<Time>> SqliteStore::ScheduleNextRunAt() {
  return Read([&](Connection& conn) -> StatusOr<std::optional<Time>> {
    ASSIGN_OR_RETURN(Statement st,
                     conn.Prepare("SELECT MIN(next_run_at) FROM schedules WHERE paused = 0",
                                  "find next schedule"));
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<Time>();
    return OptTime(st, 0);
  });
}

StatusOr<core::ScheduleFireResult> SqliteStore::ScheduleFire(
    const core::ScheduleFireParams& params) {
  return Write([&](Connection& conn) -> StatusOr<core::ScheduleFireResult> {
    ASSIGN_OR_RETURN(std::optional<core::Schedule> s, FindSchedule(conn, params.id));
    if (!s) return core::NotFoundError("schedule " + params.id + " not found");
    if (s->paused || s->next_run_at != params.expected_next_run_at) {
      return core::AbortedError("schedule " + params.id + " changed concurrently");
    }
    core::ScheduleFireResult result;
    std::vector<Task> live;
    if (params.overlap != core::OverlapPolicy::kAllow && !params.occurrences.empty()) {
      ASSIGN_OR_RETURN(Statement st,
                       conn.Prepare("SELECT " SKED_TASK_COLUMNS
                                    " FROM tasks WHERE schedule_id = ? AND deleted_at IS NULL "
                                    "AND state IN ('scheduled', 'provisioning', 'running') "
                                    "ORDER BY occurrence",
                                    "find live occurrences"));
      st.Bind(params.id);
      ASSIGN_OR_RETURN(live, ReadTasks(st));
    }
    if (params.overlap == core::OverlapPolicy::kSkip && !live.empty()) {
      result.skipped = static_cast<int>(params.occurrences.size());
    } else {
      for (const Task& before : live) {  // kCancelPrevious
        Task after = before;
        after.state = TaskState::kCancelled;
        after.finished_at = params.now;
        core::ClearLease(after);
        RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
        RETURN_IF_ERROR(AppendEvent(conn, after, params.now, std::nullopt,
                                    "cancelled: a later occurrence of its schedule started"));
        result.cancelled.push_back(before);
      }
      for (const Task& t : params.occurrences) {
        ASSIGN_OR_RETURN(core::TaskInsertResult r, InsertOne(conn, t));
        result.inserted.push_back(std::move(r.task));
      }
    }
    ASSIGN_OR_RETURN(Statement up,
                     conn.Prepare("UPDATE schedules SET next_run_at = ?, updated_at = ? "
                                  "WHERE id = ?",
                                  "advance schedule"));
    up.Bind(Micros(params.next_run_at)).Bind(core::ToMicros(params.now)).Bind(params.id);
    RETURN_IF_ERROR(up.Run());
    return result;
  });
}

StatusOr<std::vector<core::WebhookDelivery>> SqliteStore::WebhookClaim(
    const core::WebhookClaimParams& params) {
  if (params.limit <= 0) return std::vector<core::WebhookDelivery>();
  return Write([&](Connection& conn) -> StatusOr<std::vector<core::WebhookDelivery>> {
    const int64_t now = core::ToMicros(params.now);
    std::vector<core::WebhookDelivery> due;
    {
      ASSIGN_OR_RETURN(
          Statement st,
          conn.Prepare("SELECT id, task_id, url, task_state, attempt FROM webhooks "
                       "WHERE state = 'pending' AND next_attempt_at <= ? "
                       "AND (lease_expires_at IS NULL OR lease_expires_at < ?) "
                       "ORDER BY next_attempt_at, id LIMIT ?",
                       "select due webhooks"));
      st.Bind(now).Bind(now).Bind(params.limit);
      while (true) {
        ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(TaskState state, StateFromText(st.Text(3)));
        due.push_back({.id = st.Int(0),
                       .task_id = st.Text(1),
                       .url = st.Text(2),
                       .task_state = state,
                       .attempt = static_cast<int>(st.Int(4)) + 1});
      }
    }
    for (const auto& d : due) {
      ASSIGN_OR_RETURN(Statement st,
                       conn.Prepare("UPDATE webhooks SET attempt = ?, lease_owner = ?, "
                                    "lease_expires_at = ? WHERE id = ?",
                                    "claim webhook"));
      st.Bind(d.attempt)
          .Bind(params.node)
          .Bind(core::ToMicros(params.now + params.lease))
          .Bind(d.id);
      RETURN_IF_ERROR(st.Run());
    }
    return due;
  });
}

Status SqliteStore::WebhookFinish(const core::WebhookFinishParams& params) {
  return Write([&](Connection& conn) -> Status {
    std::string task_id;
    {
      ASSIGN_OR_RETURN(Statement st,
                       conn.Prepare("SELECT task_id, state, attempt FROM webhooks WHERE id = ?",
                                    "read webhook"));
      st.Bind(params.id);
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return core::NotFoundError("webhook " + std::to_string(params.id) + " not found");
      if (st.Text(1) != "pending" || st.Int(2) != params.attempt) {
        return core::AbortedError("webhook attempt " + std::to_string(params.attempt) +
                                  " is no longer current");
      }
      task_id = st.Text(0);
    }
    const char* state =
        params.delivered ? "delivered" : (params.retry_at.has_value() ? "pending" : "failed");
    {
      ASSIGN_OR_RETURN(
          Statement st,
          conn.Prepare("UPDATE webhooks SET state = ?, next_attempt_at = COALESCE(?, "
                       "next_attempt_at), lease_owner = NULL, lease_expires_at = NULL, "
                       "last_error = ?, finished_at = ? WHERE id = ?",
                       "finish webhook"));
      st.Bind(state)
          .Bind(Micros(params.retry_at))
          .Bind(params.delivered ? std::optional<std::string>() : params.error)
          .Bind(params.delivered || !params.retry_at ? std::optional<int64_t>(
                                                           core::ToMicros(params.now))
                                                     : std::nullopt)
          .Bind(params.id);
      RETURN_IF_ERROR(st.Run());
    }
    // A line in the task's history, in its current state.
    ASSIGN_OR_RETURN(std::optional<Task> task, FindLiveTask(conn, task_id));
    if (!task.has_value()) return core::OkStatus();  // deleted since
    return AppendEvent(conn, *task, params.now, params.node, core::WebhookEventMessage(params));
  });
}

StatusOr<core::QueueLimits> SqliteStore::QueuePut(const core::QueueLimits& limits) {
  RETURN_IF_ERROR(core::ValidateQueueLimits(limits));
  return Write([&](Connection& conn) -> StatusOr<core::QueueLimits> {
    ASSIGN_OR_RETURN(
        Statement st,
        conn.Prepare("INSERT INTO queues (name, max_running, max_per_second, updated_at) "
                     "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                     "max_running = excluded.max_running, "
                     "max_per_second = excluded.max_per_second, "
                     "updated_at = excluded.updated_at, "
                     "bucket_tokens = NULL, bucket_at = NULL",
                     "put queue"));
    st.Bind(limits.name)
        .Bind(limits.max_running)
        .Bind(limits.max_per_second)
        .Bind(core::ToMicros(limits.updated_at));
    RETURN_IF_ERROR(st.Run());
    return limits;
  });
}

StatusOr<std::vector<core::QueueInfo>> SqliteStore::QueueList() {
  return Read([&](Connection& conn) -> StatusOr<std::vector<core::QueueInfo>> {
    // SQLite has no FULL JOIN before 3.39: the names first, then the parts.
    ASSIGN_OR_RETURN(
        Statement st,
        conn.Prepare(
            "WITH names AS (SELECT name FROM queues UNION "
            "  SELECT DISTINCT queue FROM tasks WHERE deleted_at IS NULL), "
            "counts AS (SELECT queue, "
            "  SUM(state IN ('provisioning', 'running')) AS running, "
            "  SUM(state = 'scheduled') AS scheduled "
            "  FROM tasks WHERE deleted_at IS NULL GROUP BY queue) "
            "SELECT n.name, q.max_running, q.max_per_second, q.updated_at, "
            "  COALESCE(c.running, 0), COALESCE(c.scheduled, 0) "
            "FROM names n LEFT JOIN queues q ON q.name = n.name "
            "LEFT JOIN counts c ON c.queue = n.name ORDER BY n.name",
            "list queues"));
    std::vector<core::QueueInfo> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return out;
      core::QueueInfo q;
      q.limits.name = st.Text(0);
      q.limits.max_running = st.OptInt(1);
      q.limits.max_per_second = st.OptDouble(2);
      q.limits.updated_at = OptTime(st, 3).value_or(Time{});
      q.running = st.Int(4);
      q.scheduled = st.Int(5);
      out.push_back(std::move(q));
    }
  });
}

StatusOr<std::optional<Time>> SqliteStore::TaskNextRunAt(
    const std::vector<std::string>& runners) {
  if (runners.empty()) return std::optional<Time>();
  return Read([&](Connection& conn) -> StatusOr<std::optional<Time>> {
    ASSIGN_OR_RETURN(
        Statement st,
        conn.Prepare("SELECT run_at FROM tasks WHERE state = 'scheduled' "
                     "AND deleted_at IS NULL "
                     "AND runner IN (SELECT value FROM json_each(?)) "
                     "ORDER BY run_at LIMIT 1",
                     "find next run_at"));
    st.Bind(store_internal::EncodeStringList(runners));
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<Time>();
    return OptTime(st, 0);
  });
}

StatusOr<std::vector<core::TaskLeaseRef>> SqliteStore::TaskLeaseRenew(
    const core::TaskLeaseRenewParams& params) {
  if (params.tasks.empty()) return std::vector<core::TaskLeaseRef>();
  return Write(
      [&](Connection& conn) -> StatusOr<std::vector<core::TaskLeaseRef>> {
        std::vector<core::TaskLeaseRef> lost;
        const int64_t expires = core::ToMicros(params.now + params.lease);
        for (const core::TaskLeaseRef& ref : params.tasks) {
          ASSIGN_OR_RETURN(
              Statement st,
              conn.Prepare("UPDATE tasks SET lease_expires_at = ? "
                           "WHERE id = ? AND attempt = ? AND lease_owner = ? "
                           "AND state IN ('provisioning', 'running') "
                           "AND deleted_at IS NULL",
                           "renew lease"));
          st.Bind(expires).Bind(ref.id).Bind(ref.attempt).Bind(params.node);
          RETURN_IF_ERROR(st.Run());
          if (conn.Changes() == 0) lost.push_back(ref);
        }
        return lost;
      });
}

Status SqliteStore::TaskSetHandle(const core::TaskSetHandleParams& params) {
  return Write([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(Task before, LoadLiveTask(conn, params.id));
    RETURN_IF_ERROR(CheckCurrentAttempt(before, params.attempt));
    Task after = before;
    after.handle = params.handle;
    if (params.instance_id.has_value()) after.instance_id = params.instance_id;
    RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
    if (params.message.empty()) return core::OkStatus();
    return AppendEvent(conn, after, params.now, after.lease_owner,
                       params.message);
  });
}

Status SqliteStore::TaskMarkRunning(const core::TaskMarkRunningParams& params) {
  return Write([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(Task before, LoadLiveTask(conn, params.id));
    if (before.state != TaskState::kProvisioning ||
        before.attempt != params.attempt) {
      return core::AbortedError("task " + params.id +
                                " is not provisioning in attempt " +
                                std::to_string(params.attempt));
    }
    Task after = before;
    after.state = TaskState::kRunning;
    RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
    return AppendEvent(conn, after, params.now, after.lease_owner,
                       MessageOr(params.message, "running"));
  });
}

Status SqliteStore::TaskFinish(const core::TaskFinishParams& params) {
  RETURN_IF_ERROR(core::CheckFinishState(params));
  return Write([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(Task before, LoadLiveTask(conn, params.id));
    RETURN_IF_ERROR(CheckCurrentAttempt(before, params.attempt));
    Task after = before;
    core::ApplyFinish(params, after);
    RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
    return AppendEvent(conn, after, params.now, params.node,
                       core::FinishEventMessage(params));
  });
}

StatusOr<Task> SqliteStore::TaskRetry(const core::TaskRetryParams& params) {
  return Write([&](Connection& conn) -> StatusOr<Task> {
    ASSIGN_OR_RETURN(Task before, LoadLiveTask(conn, params.id));
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
    RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
    RETURN_IF_ERROR(AppendEvent(conn, after, params.now, params.node,
                                MessageOr(params.message, fallback)));
    return after;
  });
}

StatusOr<Task> SqliteStore::TaskCancel(const core::TaskCancelParams& params) {
  return Write([&](Connection& conn) -> StatusOr<Task> {
    ASSIGN_OR_RETURN(Task before, LoadLiveTask(conn, params.id));
    if (before.state == TaskState::kCancelled) return before;
    if (!core::IsValidTransition(before.state, TaskState::kCancelled)) {
      return core::FailedPreconditionError(
          "task " + params.id + " already " +
          std::string(TaskStateName(before.state)));
    }
    Task after = before;
    after.state = TaskState::kCancelled;
    after.finished_at = params.now;
    core::ClearLease(after);
    RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
    RETURN_IF_ERROR(AppendEvent(conn, after, params.now, std::nullopt,
                                MessageOr(params.message, "cancelled")));
    // The caller stops a running attempt with the lease owner and handle.
    Task out = std::move(before);
    out.state = TaskState::kCancelled;
    out.finished_at = params.now;
    return out;
  });
}

StatusOr<Task> SqliteStore::TaskDelete(const core::TaskCancelParams& params) {
  return Write([&](Connection& conn) -> StatusOr<Task> {
    ASSIGN_OR_RETURN(Task before, LoadLiveTask(conn, params.id));
    ASSIGN_OR_RETURN(Statement st,
                     conn.Prepare("UPDATE tasks SET deleted_at = ? "
                                  "WHERE id = ? AND deleted_at IS NULL",
                                  "delete task"));
    st.Bind(core::ToMicros(params.now)).Bind(params.id);
    RETURN_IF_ERROR(st.Run());
    if (conn.Changes() != 1) {
      return core::AbortedError("task " + params.id + " changed concurrently");
    }
    // Kept for audit; TaskEventList no longer shows it.
    RETURN_IF_ERROR(AppendEvent(conn, before, params.now, std::nullopt,
                                MessageOr(params.message, "deleted")));
    return before;
  });
}

StatusOr<Task> SqliteStore::TaskAdopt(const core::TaskAdoptParams& params) {
  if (params.node.empty()) return core::InvalidArgumentError("node id is empty");
  return Write([&](Connection& conn) -> StatusOr<Task> {
    ASSIGN_OR_RETURN(Task before, LoadLiveTask(conn, params.id));
    RETURN_IF_ERROR(CheckCurrentAttempt(before, params.attempt));
    const bool expired = !before.lease_expires_at || *before.lease_expires_at < params.now;
    if (!expired && before.lease_owner != params.node) {
      return core::AbortedError("task " + params.id + " is leased to " +
                                before.lease_owner.value_or("?"));
    }
    Task after = before;
    after.lease_owner = params.node;
    after.lease_expires_at = params.now + params.lease;
    RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
    RETURN_IF_ERROR(AppendEvent(conn, after, params.now, params.node, "adopted by " + params.node));
    return after;
  });
}

StatusOr<std::vector<Task>> SqliteStore::TaskRescue(
    const core::TaskRescueParams& params) {
  if (params.limit <= 0) return std::vector<Task>();
  return Write([&](Connection& conn) -> StatusOr<std::vector<Task>> {
    std::vector<Task> expired;
    {
      ASSIGN_OR_RETURN(
          Statement st,
          conn.Prepare("SELECT " SKED_TASK_COLUMNS
                       " FROM tasks WHERE state IN ('provisioning', 'running') "
                       "AND deleted_at IS NULL AND lease_expires_at < ? "
                       "AND (handle IS NULL OR lease_expires_at < ?) "
                       "ORDER BY lease_expires_at, id LIMIT ?",
                       "select expired leases"));
      st.Bind(core::ToMicros(params.now))
          .Bind(core::ToMicros(params.now - params.handle_grace))
          .Bind(params.limit);
      ASSIGN_OR_RETURN(expired, ReadTasks(st));
    }
    std::vector<Task> rescued;
    rescued.reserve(expired.size());
    for (const Task& before : expired) {
      Task after = before;
      core::ClearLease(after);
      after.error = "lease expired";
      std::string message;
      // The lost attempt counts toward max_attempts.
      if (after.ChargedAttempts() >= after.max_attempts) {
        after.state = TaskState::kFailed;
        after.finished_at = params.now;
        message = "lease expired; no attempts left";
      } else {
        after.state = TaskState::kScheduled;
        message = "lease expired; rescheduled";
      }
      RETURN_IF_ERROR(CasUpdateTask(conn, before, after));
      RETURN_IF_ERROR(
          AppendEvent(conn, after, params.now, before.lease_owner, message));
      rescued.push_back(std::move(after));
    }
    return rescued;
  });
}

StatusOr<std::vector<TaskEvent>> SqliteStore::TaskEventList(
    const std::string& id) {
  return Read([&](Connection& conn) -> StatusOr<std::vector<TaskEvent>> {
    {
      ASSIGN_OR_RETURN(
          Statement st,
          conn.Prepare(
              "SELECT 1 FROM tasks WHERE id = ? AND deleted_at IS NULL",
              "check task"));
      st.Bind(id);
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return core::NotFoundError("task " + id + " not found");
    }
    ASSIGN_OR_RETURN(
        Statement st,
        conn.Prepare("SELECT at, state, attempt, node, instance_id, message "
                     "FROM task_events WHERE task_id = ? ORDER BY seq",
                     "list task events"));
    st.Bind(id);
    std::vector<TaskEvent> events;
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return events;
      TaskEvent e;
      e.at = core::TimeFromMicros(st.Int(0));
      ASSIGN_OR_RETURN(e.state, StateFromText(st.Text(1)));
      e.attempt = static_cast<int>(st.Int(2));
      e.node = st.OptText(3);
      e.instance_id = st.OptText(4);
      e.message = st.Text(5);
      events.push_back(std::move(e));
    }
  });
}

StatusOr<std::map<TaskState, int64_t>> SqliteStore::TaskCountByState() {
  return Read([&](Connection& conn) -> StatusOr<std::map<TaskState, int64_t>> {
    ASSIGN_OR_RETURN(Statement st,
                     conn.Prepare("SELECT state, COUNT(*) FROM tasks "
                                  "WHERE deleted_at IS NULL GROUP BY state",
                                  "count tasks"));
    // Every state is present, with 0 when no task is in it.
    std::map<TaskState, int64_t> counts;
    for (TaskState s :
         {TaskState::kScheduled, TaskState::kProvisioning, TaskState::kRunning,
          TaskState::kSucceeded, TaskState::kFailed, TaskState::kCancelled}) {
      counts[s] = 0;
    }
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return counts;
      ASSIGN_OR_RETURN(TaskState s, StateFromText(st.Text(0)));
      counts[s] = st.Int(1);
    }
  });
}

// --- Nodes and leadership ----------------------------------------------------

Status SqliteStore::NodeHeartbeat(const NodeInfo& node) {
  if (node.id.empty()) return core::InvalidArgumentError("node id is empty");
  return Write([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(
        Statement st,
        conn.Prepare(
            "INSERT INTO nodes (id, version, started_at, last_heartbeat, concurrency) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "version = excluded.version, "
            "started_at = excluded.started_at, "
            "last_heartbeat = excluded.last_heartbeat, "
            "concurrency = excluded.concurrency",
            "record node heartbeat"));
    st.Bind(node.id)
        .Bind(node.version)
        .Bind(core::ToMicros(node.started_at))
        .Bind(core::ToMicros(node.last_heartbeat))
        .Bind(static_cast<int64_t>(node.concurrency));
    return st.Run();
  });
}

StatusOr<std::vector<NodeInfo>> SqliteStore::NodeList() {
  return Read([&](Connection& conn) -> StatusOr<std::vector<NodeInfo>> {
    ASSIGN_OR_RETURN(
        Statement st,
        conn.Prepare("SELECT id, version, started_at, last_heartbeat, concurrency "
                     "FROM nodes ORDER BY id",
                     "list nodes"));
    std::vector<NodeInfo> nodes;
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return nodes;
      nodes.push_back(
          NodeInfo{.id = st.Text(0),
                   .version = st.Text(1),
                   .started_at = core::TimeFromMicros(st.Int(2)),
                   .last_heartbeat = core::TimeFromMicros(st.Int(3)),
                   .concurrency = static_cast<int>(st.Int(4))});
    }
  });
}

StatusOr<int64_t> SqliteStore::NodePrune(Time silent_since) {
  return Write([&](Connection& conn) -> StatusOr<int64_t> {
    ASSIGN_OR_RETURN(Statement st, conn.Prepare("DELETE FROM nodes WHERE last_heartbeat < ?",
                                                "prune nodes"));
    st.Bind(core::ToMicros(silent_since));
    RETURN_IF_ERROR(st.Run());
    return static_cast<int64_t>(conn.Changes());
  });
}

StatusOr<std::string> SqliteStore::SettingInit(const std::string& key,
                                               const std::string& value) {
  if (key.empty()) return core::InvalidArgumentError("setting key is empty");
  return Write([&](Connection& conn) -> StatusOr<std::string> {
    ASSIGN_OR_RETURN(Statement ins,
                     conn.Prepare("INSERT INTO settings (key, value) VALUES (?, ?) "
                                  "ON CONFLICT (key) DO NOTHING",
                                  "init setting"));
    ins.Bind(key).Bind(value);
    RETURN_IF_ERROR(ins.Run());
    ASSIGN_OR_RETURN(Statement sel,
                     conn.Prepare("SELECT value FROM settings WHERE key = ?", "read setting"));
    sel.Bind(key);
    ASSIGN_OR_RETURN(bool row, sel.Step());
    if (!row) return core::InternalError("setting " + key + " neither inserted nor found");
    return sel.Text(0);
  });
}

StatusOr<bool> SqliteStore::LeaderElect(const std::string& node, Time now,
                                        Duration ttl) {
  if (node.empty()) return core::InvalidArgumentError("node id is empty");
  if (ttl <= Duration::zero())
    return core::InvalidArgumentError("leader ttl must be positive");
  return Write([&](Connection& conn) -> StatusOr<bool> {
    {
      // The holder extends its lease; anyone takes a lease that expired
      // before `now`. elected_at marks when the current holder took over.
      ASSIGN_OR_RETURN(
          Statement st,
          conn.Prepare(
              "INSERT INTO leader (name, node, elected_at, expires_at) "
              "VALUES ('default', ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
              "node = excluded.node, "
              "elected_at = CASE WHEN leader.node = excluded.node "
              "THEN leader.elected_at ELSE excluded.elected_at END, "
              "expires_at = excluded.expires_at "
              "WHERE leader.node = excluded.node "
              "OR leader.expires_at < excluded.elected_at",
              "elect leader"));
      st.Bind(node).Bind(core::ToMicros(now)).Bind(core::ToMicros(now + ttl));
      RETURN_IF_ERROR(st.Run());
    }
    ASSIGN_OR_RETURN(
        Statement st,
        conn.Prepare("SELECT node FROM leader WHERE name = 'default'",
                     "read leader"));
    ASSIGN_OR_RETURN(bool row, st.Step());
    return row && st.Text(0) == node;
  });
}

Status SqliteStore::LeaderResign(const std::string& node) {
  return Write([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(
        Statement st,
        conn.Prepare("DELETE FROM leader WHERE name = 'default' AND node = ?",
                     "resign leader"));
    st.Bind(node);
    return st.Run();
  });
}

// --- Health ------------------------------------------------------------------

Status SqliteStore::Ping() {
  return Read([&](Connection& conn) -> Status {
    ASSIGN_OR_RETURN(Statement st, conn.Prepare("SELECT 1", "ping"));
    return st.Run();
  });
}

}  // namespace

StatusOr<std::unique_ptr<core::Store>> OpenSqliteStore(
    const SqliteOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store,
                   SqliteStore::Open(options));
  return std::unique_ptr<core::Store>(std::move(store));
}

}  // namespace sked::store
