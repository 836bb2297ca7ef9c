#include "api/task_json.h"

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "core/time.h"

namespace sked::api {
namespace {

boost::json::value TimeOrNull(const std::optional<core::Time>& t) {
  if (!t) return nullptr;
  return boost::json::value(core::FormatRfc3339(*t));
}

boost::json::value StringOrNull(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  return boost::json::value(*s);
}

boost::json::object MapToJson(const std::map<std::string, std::string>& m) {
  boost::json::object o;
  o.reserve(m.size());
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

}  // namespace

boost::json::object TaskToJson(const core::Task& task) {
  const bool container = task.type == core::kContainerType;
  boost::json::object o;
  o.reserve(23);
  o["id"] = task.id;
  o["type"] = task.type;
  o["run_at"] = core::FormatRfc3339(task.run_at);
  o["state"] = core::TaskStateName(task.state);
  o["runner"] = task.runner;
  if (container) {
    o["image"] = task.image;
    boost::json::array cmd;
    cmd.reserve(task.command.size());
    for (const auto& arg : task.command) cmd.emplace_back(arg);
    o["command"] = std::move(cmd);
    o["env"] = MapToJson(task.env);
  } else {
    o["image"] = nullptr;
    o["command"] = nullptr;
    o["env"] = nullptr;
  }
  o["attempt"] = task.attempt;
  o["max_attempts"] = task.max_attempts;
  o["timeout_s"] = task.timeout_s;
  o["idempotency_key"] = StringOrNull(task.idempotency_key);
  o["labels"] = MapToJson(task.labels);
  o["created_at"] = core::FormatRfc3339(task.created_at);
  o["started_at"] = TimeOrNull(task.started_at);
  o["finished_at"] = TimeOrNull(task.finished_at);
  o["instance_id"] = StringOrNull(task.instance_id);
  if (task.result) {
    o["result"] =
        boost::json::object{{"exit_code", task.result->exit_code}, {"output", task.result->output}};
  } else {
    o["result"] = nullptr;
  }
  o["error"] = StringOrNull(task.error);
  o["queue"] = task.queue;
  o["notify_url"] = StringOrNull(task.notify_url);
  o["schedule_id"] = StringOrNull(task.schedule_id);
  o["occurrence"] = TimeOrNull(task.occurrence);
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
  return o;
}

}  // namespace sked::api
