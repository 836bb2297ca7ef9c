#include "api/task_json.h"

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "core/time.h"

namespace sked::api {
namespace {

boost::json::value TimeOrNull(const std::optional<core::Time>& t,
                              const boost::json::storage_ptr& sp = {}) {
  if (!t) return boost::json::value(nullptr, sp);
  return boost::json::value(core::FormatRfc3339(*t), sp);
}

boost::json::value StringOrNull(const std::optional<std::string>& s,
                                const boost::json::storage_ptr& sp = {}) {
  if (!s) return boost::json::value(nullptr, sp);
  return boost::json::value(*s, sp);
}

boost::json::object MapToJson(const std::map<std::string, std::string>& m,
                              const boost::json::storage_ptr& sp = {}) {
  boost::json::object o(sp);
  o.reserve(m.size());
  for (const auto& [k, v] : m) o.emplace(k, v);
  return o;
}

}  // namespace

boost::json::object TaskToJson(const core::Task& task, boost::json::storage_ptr sp) {
  const bool container = task.type == core::kContainerType;
  boost::json::object o(sp);
  o.reserve(23);
  o.emplace("id", task.id);
  o.emplace("type", task.type);
  o.emplace("run_at", core::FormatRfc3339(task.run_at));
  o.emplace("state", core::TaskStateName(task.state));
  o.emplace("runner", task.runner);
  if (container) {
    o.emplace("image", task.image);
    boost::json::array cmd(sp);
    cmd.reserve(task.command.size());
    for (const auto& arg : task.command) cmd.emplace_back(arg);
    o.emplace("command", std::move(cmd));
    o.emplace("env", MapToJson(task.env, sp));
  } else {
    o.emplace("image", nullptr);
    o.emplace("command", nullptr);
    o.emplace("env", nullptr);
  }
  o.emplace("attempt", task.attempt);
  o.emplace("max_attempts", task.max_attempts);
  o.emplace("timeout_s", task.timeout_s);
  o.emplace("idempotency_key", StringOrNull(task.idempotency_key, sp));
  o.emplace("labels", MapToJson(task.labels, sp));
  o.emplace("created_at", core::FormatRfc3339(task.created_at));
  o.emplace("started_at", TimeOrNull(task.started_at, sp));
  o.emplace("finished_at", TimeOrNull(task.finished_at, sp));
  o.emplace("instance_id", StringOrNull(task.instance_id, sp));
  if (task.result) {
    boost::json::object result(sp);
    result.reserve(2);
    result.emplace("exit_code", task.result->exit_code);
    result.emplace("output", task.result->output);
    o.emplace("result", std::move(result));
  } else {
    o.emplace("result", nullptr);
  }
  o.emplace("error", StringOrNull(task.error, sp));
  o.emplace("queue", task.queue);
  o.emplace("notify_url", StringOrNull(task.notify_url, sp));
  o.emplace("schedule_id", StringOrNull(task.schedule_id, sp));
  o.emplace("occurrence", TimeOrNull(task.occurrence, sp));
  return o;
}

boost::json::object EventToJson(const core::TaskEvent& event) {
  boost::json::object o;
  o["at"] = core::FormatRfc3339(event.at);
  o["state"] = core::TaskStateName(event.state);
  o["attempt"] = event.attempt;
  o["node"] = StringOrNull(event.node);
  o["instance_id"] = StringOrNull(event.instance_id);
  o["message"] = event.message;
  return o;
}

boost::json::object NodeToJson(const core::NodeInfo& node) {
  boost::json::object o;
  o["id"] = node.id;
  o["version"] = node.version;
  o["started_at"] = core::FormatRfc3339(node.started_at);
  o["last_heartbeat"] = core::FormatRfc3339(node.last_heartbeat);
  o["concurrency"] = node.concurrency;
  return o;
}

}  // namespace sked::api
