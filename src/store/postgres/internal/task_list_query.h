// File: store/postgres/internal/task_list_query.h
//
// The statement PostgresStore::TaskList runs: GET /v1/tasks's filters, order,
// cursor and limit as SQL and its parameters. Apart from the store so that a
// test can prepare it on a connection of its own and see how PostgreSQL plans
// it.
//
// Thread safety: a free function without shared state.
#pragma once

#include <string>

#include "core/status.h"
#include "core/store.h"
#include "store/postgres/internal/connection.h"

namespace sked::store::postgres_internal {

struct TaskListQuery {
  std::string sql;  // selects SKED_PG_TASK_COLUMNS (task_columns.h)
  Params params;
};

// kInvalidArgument for a limit outside 1..1000 or a cursor whose id is not a
// UUID. The query asks for limit + 1 rows: one more tells that more follow.
core::StatusOr<TaskListQuery> BuildTaskListQuery(const core::TaskListParams& params);

}  // namespace sked::store::postgres_internal
