#include "store/postgres/internal/task_list_query.h"

#include <string>
#include <vector>

#include "core/ids.h"
#include "store/internal/json_columns.h"
#include "store/postgres/internal/task_columns.h"

namespace sked::store::postgres_internal {
namespace {

std::vector<std::string> StateNames(const std::vector<core::TaskState>& states) {
  std::vector<std::string> out;
  for (core::TaskState s : states) out.emplace_back(core::TaskStateName(s));
  return out;
}

}  // namespace

core::StatusOr<TaskListQuery> BuildTaskListQuery(const core::TaskListParams& params) {
  if (params.limit < 1 || params.limit > 1000) {
    return core::InvalidArgumentError("limit must be 1 to 1000");
  }
  // The SQL depends only on which filters are present (and, with a label
  // filter, on the limit), so the number of distinct (prepared) statements
  // stays small.
  //
  // Without a label filter, from tasks: `id IS NOT NULL` (always true) is what
  // lets the query use tasks_list_idx, which requires it so that the claim,
  // which never says it, cannot take the list index for the claim index
  // (migration 0008).
  //
  // With one, the page is read from task_labels (migration 0011): the first
  // pair's entries in (run_at, id) order, each task looked up by its id in a
  // LATERAL subquery that holds the task's own filters, so only tasks that
  // carry the pair are opened. The subquery (OFFSET 0 keeps it one) and the
  // limit written into the SQL give the statement a single sensible plan
  // whatever the parameters, so PostgreSQL keeps the generic plan instead of
  // planning each call again: that planning was a quarter of the database's
  // time per page (bench/README.md, fifth pass). Without the literal limit a
  // generic plan reckons on reading a tenth of the pair's entries, and takes
  // worse shapes.
  const bool by_label = !params.labels.empty();
  const std::string run_at = by_label ? "l.label_run_at" : "run_at";
  const std::string id = by_label ? "l.task_id" : "id";
  TaskListQuery q;
  Params& p = q.params;
  int n = 0;
  auto next = [&n] {
    std::string placeholder = "$";  // not "$" + ...: GCC 12 warns wrongly (-Wrestrict)
    return placeholder += std::to_string(++n);
  };
  std::string entries;  // by label: the conditions on the pair's entries
  std::string where;    // the conditions on each task
  if (by_label) {
    entries += "l.label_key = " + next();
    entries += " AND l.label_value = " + next();
    p.Add(params.labels.begin()->first).Add(params.labels.begin()->second);
  }
  std::string& on_run_at = by_label ? entries : where;
  if (params.states.size() == 1) {
    // Equality, not = ANY: only then can an index on (state, run_at, id)
    // give the rows in run_at order (PostgreSQL 15 orders no array scan).
    where += " AND state = " + next();
    p.Add(std::string(core::TaskStateName(params.states.front())));
  } else if (!params.states.empty()) {
    where += " AND state = ANY(" + next() + "::text[])";
    p.Add(TextArrayLiteral(StateNames(params.states)));
  }
  if (!params.types.empty()) {
    where += " AND type = ANY(" + next() + "::text[])";
    p.Add(TextArrayLiteral(params.types));
  }
  if (params.since.has_value()) {
    on_run_at += " AND " + run_at + " >= " + next() + "::timestamptz";
    p.Add(*params.since);
  }
  if (params.until.has_value()) {
    on_run_at += " AND " + run_at + " < " + next() + "::timestamptz";
    p.Add(*params.until);
  }
  if (params.queue.has_value()) {
    where += " AND queue = " + next();
    p.Add(*params.queue);
  }
  if (params.schedule_id.has_value()) {
    where += " AND schedule_id = " + next();
    p.Add(*params.schedule_id);
  }
  if (params.labels.size() > 1) {
    // Every wanted pair is contained in the task's labels: one {"k": "v"}
    // object per pair (not one object, so a key asked for twice with two
    // values matches nothing), each a fast jsonb containment test.
    std::vector<std::string> wanted;
    for (const auto& [k, v] : params.labels) {
      wanted.push_back(store_internal::EncodeStringMap({{k, v}}));
    }
    where += " AND labels @> ALL(" + next() + "::jsonb[])";
    p.Add(TextArrayLiteral(wanted));
  }
  if (params.after.has_value()) {
    if (!core::IsUuid(params.after->id)) {
      return core::InvalidArgumentError("cursor id " + params.after->id + " is not a UUID");
    }
    const std::string pr = next();
    const std::string pi = next();
    on_run_at += " AND (" + run_at + ", " + id + ") " + (params.ascending ? ">" : "<") + " (" + pr +
                 "::timestamptz, " + pi + "::uuid)";
    p.Add(params.after->run_at).Add(params.after->id);
  }
  const std::string dir = params.ascending ? " ASC" : " DESC";
  const std::string order = " ORDER BY " + run_at + dir + ", " + id + dir;
  // One extra row tells whether more follow.
  const std::string limit = std::to_string(params.limit + 1);
  std::string& sql = q.sql;
  sql = "SELECT " SKED_PG_TASK_COLUMNS;
  if (by_label) {
    sql += " FROM task_labels l CROSS JOIN LATERAL (SELECT * FROM tasks";
    sql += " WHERE tasks.id = l.task_id AND deleted_at IS NULL" + where + " OFFSET 0) t";
    sql += " WHERE " + entries + order + " LIMIT " + limit;
  } else {
    sql += " FROM tasks WHERE deleted_at IS NULL AND id IS NOT NULL" + where + order + " LIMIT " +
           next() + "::int";
    p.Add(params.limit + 1);
  }
  return q;
}

}  // namespace sked::store::postgres_internal
