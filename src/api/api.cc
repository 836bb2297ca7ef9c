#include "api/api.h"

#include <openssl/crypto.h>

#include <boost/json.hpp>
#include <boost/url/parse_query.hpp>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "api/callback_request.h"
#include "api/callback_token.h"
#include "api/embedded_assets.h"
#include "api/error_json.h"
#include "api/legacy_json.h"
#include "api/list_query.h"
#include "api/queue_json.h"
#include "api/schedule_json.h"
#include "api/task_json.h"

namespace sked::api {

namespace json = boost::json;

namespace {

// "succeeded" | "failed" | "interrupted" | "heartbeat", as validated by the codecs.
sched::CallbackStatus ToCallbackStatus(std::string_view s) {
  if (s == kCallbackFailed) return sched::CallbackStatus::kFailed;
  if (s == kCallbackInterrupted) return sched::CallbackStatus::kInterrupted;
  if (s == kCallbackHeartbeat) return sched::CallbackStatus::kHeartbeat;
  return sched::CallbackStatus::kSucceeded;
}

HttpResponse Json(unsigned status, const json::value& v) {
  HttpResponse r;
  r.status = status;
  r.body = json::serialize(v);
  return r;
}

HttpResponse Error(const core::Status& st) {
  HttpResponse r;
  r.status = HttpStatusFor(st.code());
  r.body = ErrorBody(st.code(), st.message());
  return r;
}

// The briefs' routes answer errors as {"message": "..."}.
HttpResponse LegacyError(unsigned status, const std::string& message) {
  return Json(status, json::object{{"message", message}});
}

HttpResponse NoContent() {
  HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

HttpResponse Text(unsigned status, std::string body, std::string type = "text/plain") {
  HttpResponse r;
  r.status = status;
  r.content_type = std::move(type);
  r.body = std::move(body);
  return r;
}

core::StatusOr<json::value> ParseBody(const HttpRequest& req) {
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec) return core::InvalidArgumentError("body: malformed JSON (" + ec.message() + ")");
  return v;
}

core::StatusOr<boost::urls::params_view> QueryParams(const HttpRequest& req) {
  auto q = boost::urls::parse_query(req.query);
  if (!q) return core::InvalidArgumentError("query: malformed query string");
  return boost::urls::params_view(*q);
}

std::string BearerToken(const HttpRequest& req) {
  const std::string& h = req.Header("authorization");
  static const std::string kPrefix = "Bearer ";
  if (h.size() <= kPrefix.size()) return "";
  std::string scheme = h.substr(0, kPrefix.size());
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
  if (scheme != "bearer ") return "";
  return h.substr(kPrefix.size());
}

json::array TasksToJson(const std::vector<core::Task>& tasks, const json::storage_ptr& sp = {}) {
  json::array a(sp);
  a.reserve(tasks.size());
  for (const auto& t : tasks) a.push_back(TaskToJson(t, sp));
  return a;
}

// A page of tasks, built in one arena that lives until it is serialised.
HttpResponse TaskPageJson(const core::TaskPage& page) {
  json::monotonic_resource arena;
  json::storage_ptr sp(&arena);
  json::object out(sp);
  out.reserve(2);
  out.emplace("tasks", TasksToJson(page.tasks, sp));
  out.emplace("next_cursor",
              page.next ? json::value(EncodeCursor(*page.next), sp) : json::value(nullptr, sp));
  return Json(200, out);
}

// GET of one task: the task, or the error.
HttpResponse TaskResponse(const core::StatusOr<core::Task>& t) {
  if (!t.ok()) return Error(t.status());
  return Json(200, TaskToJson(*t));
}

}  // namespace

Api::Api(ApiOptions options, sched::TaskService& service, const sched::Engine* engine,
         const core::Clock& clock, sched::ScheduleService* schedules)
    : options_(std::move(options)),
      service_(service),
      engine_(engine),
      clock_(clock),
      schedules_(schedules) {
  AddRoutes();
}

bool Api::Authorized(const HttpRequest& req) const {
  if (options_.api_tokens.empty()) return true;
  std::string presented = BearerToken(req);
  if (presented.empty()) return false;
  bool ok = false;
  for (const auto& t : options_.api_tokens)  // no early exit: constant work per token
    ok |= t.size() == presented.size() &&
          CRYPTO_memcmp(t.data(), presented.data(), t.size()) == 0;
  return ok;
}

void Api::AddRoutes() {
  auto& r = router_;
  // v1
  r.Add("POST", "/v1/tasks", [this](auto& req, auto&) { return CreateTask(req); });
  r.Add("GET", "/v1/tasks", [this](auto& req, auto&) { return ListTasks(req); });
  r.Add("POST", "/v1/tasks:batch", [this](auto& req, auto&) { return CreateBatch(req); });
  r.Add("GET", "/v1/tasks/{id}", [this](auto&, auto& p) { return GetTask(p.at("id")); });
  r.Add("DELETE", "/v1/tasks/{id}", [this](auto&, auto& p) { return DeleteTask(p.at("id")); });
  r.Add("POST", "/v1/tasks/{id}/cancel",
        [this](auto&, auto& p) { return CancelTask(p.at("id")); });
  r.Add("GET", "/v1/tasks/{id}/events",
        [this](auto&, auto& p) { return TaskEvents(p.at("id")); });
  r.Add("POST", "/v1/tasks/{id}/callback",
        [this](auto& req, auto& p) { return Callback(req, p.at("id")); });
  r.Add("GET", "/v1/nodes", [this](auto&, auto&) { return Nodes(); });
  r.Add("GET", "/v1/queues", [this](auto&, auto&) { return ListQueues(); });
  r.Add("POST", "/v1/schedules", [this](auto& req, auto&) { return CreateSchedule(req); });
  r.Add("GET", "/v1/schedules", [this](auto& req, auto&) { return ListSchedules(req); });
  r.Add("GET", "/v1/schedules/{id}", [this](auto&, auto& p) { return GetSchedule(p.at("id")); });
  r.Add("DELETE", "/v1/schedules/{id}",
        [this](auto&, auto& p) { return DeleteSchedule(p.at("id")); });
  r.Add("POST", "/v1/schedules/{id}/pause",
        [this](auto&, auto& p) { return PauseSchedule(p.at("id"), true); });
  r.Add("POST", "/v1/schedules/{id}/resume",
        [this](auto&, auto& p) { return PauseSchedule(p.at("id"), false); });
  r.Add("PUT", "/v1/queues/{name}",
        [this](auto& req, auto& p) { return PutQueue(req, p.at("name")); });
  // Health, metrics, documents.
  r.Add("GET", "/healthz", [](auto&, auto&) { return Json(200, json::object{{"status", "ok"}}); });
  r.Add("GET", "/readyz", [this](auto&, auto&) { return Ready(); });
  r.Add("GET", "/metrics", [this](auto&, auto&) { return Metrics(); });
  r.Add("GET", "/openapi.yaml", [](auto&, auto&) {
    return Text(200, std::string(OpenApiYaml()), "application/yaml");
  });
  r.Add("GET", "/", [](auto&, auto&) {
    return Text(200, std::string(DashboardHtml()), "text/html; charset=utf-8");
  });
  // The original briefs' routes.
  r.Add("POST", "/schedule", [this](auto& req, auto&) { return LegacySchedule(req); });
  r.Add("GET", "/list", [this](auto&, auto&) { return LegacyList(); });
  r.Add("GET", "/status/{id}", [this](auto&, auto& p) { return LegacyStatus(p.at("id")); });
  r.Add("PUT", "/callback/{id}",
        [this](auto& req, auto& p) { return LegacyCallback(req, p.at("id")); });
  r.Add("POST", "/task/set", [this](auto& req, auto&) { return BriefCreate(req, true); });
  r.Add("POST", "/task", [this](auto& req, auto&) { return BriefCreate(req, false); });
  r.Add("GET", "/task", [this](auto& req, auto&) { return BriefList(req); });
  r.Add("GET", "/task/{id}", [this](auto&, auto& p) { return GetTask(p.at("id")); });
  r.Add("DELETE", "/task/{id}", [this](auto&, auto& p) { return DeleteTask(p.at("id")); });
  r.Add("POST", "/task/delete/{id}", [this](auto&, auto& p) { return DeleteTask(p.at("id")); });
}

HttpResponse Api::Handle(const HttpRequest& req) {
  auto m = router_.Route(req.method, req.path);
  HttpResponse resp;
  std::string route = m.handler ? m.pattern : "unmatched";
  if (!m.handler && m.allowed.empty()) {
    resp = Error(core::NotFoundError("no route " + req.method + " " + req.path));
  } else if (!m.handler) {
    std::string allow;
    for (const auto& a : m.allowed) allow += (allow.empty() ? "" : ", ") + a;
    resp.status = 405;
    resp.body = MethodNotAllowedBody(m.allowed);
    resp.headers.emplace_back("Allow", allow);
  } else {
    bool open = route == "/healthz" || route == "/readyz" || route == "/metrics" ||
                route == "/openapi.yaml" || route == "/" ||
                route == "/v1/tasks/{id}/callback" || route == "/callback/{id}";
    if (!open && !Authorized(req)) {
      resp = Error(core::UnauthenticatedError("authorization: a valid Bearer token is required"));
      resp.headers.emplace_back("WWW-Authenticate", "Bearer");
    } else {
      resp = (*m.handler)(req, m.params);
    }
  }
  if (req.method == "HEAD") resp.body.clear();
  CountRequest(route, resp.status);
  return resp;
}

bool Api::HandleAsync(const HttpRequest& req, std::function<void(HttpResponse)> reply) {
  // Cheap tests first, so that other requests are not routed twice.
  if (req.method != "GET") return false;
  const std::string_view path = req.path;
  const size_t id_at = path.starts_with("/v1/tasks/") ? 10 : path.starts_with("/task/") ? 6 : 0;
  if (id_at == 0 || path.find('/', id_at) != std::string_view::npos) return false;
  auto m = router_.Route(req.method, req.path);
  if (!m.handler || (m.pattern != "/v1/tasks/{id}" && m.pattern != "/task/{id}")) return false;
  if (!Authorized(req)) return false;  // Handle answers 401
  return service_.GetAsync(
      m.params.at("id"), [this, route = m.pattern, reply = std::move(reply)](
                             core::StatusOr<core::Task> t) {
        HttpResponse resp;
        try {
          resp = TaskResponse(std::move(t));
        } catch (const std::exception&) {
          resp = Error(core::InternalError("internal error"));
        }
        CountRequest(route, resp.status);
        reply(std::move(resp));
      });
}

// --- v1 ----------------------------------------------------------------------

HttpResponse Api::CreateTask(const HttpRequest& req) {
  auto body = ParseBody(req);
  if (!body.ok()) return Error(body.status());
  auto task = ParseCreateTask(*body, options_.create_defaults, clock_.Now());
  if (!task.ok()) return Error(task.status());
  auto r = service_.Create(std::move(*task));
  if (!r.ok()) return Error(r.status());
  HttpResponse resp = Json(r->inserted ? 201 : 200, TaskToJson(r->task));
  resp.headers.emplace_back("Location", "/v1/tasks/" + r->task.id);
  return resp;
}

HttpResponse Api::CreateBatch(const HttpRequest& req) {
  auto body = ParseBody(req);
  if (!body.ok()) return Error(body.status());
  auto tasks = ParseBatch(*body, options_.create_defaults, clock_.Now());
  if (!tasks.ok()) return Error(tasks.status());
  auto r = service_.CreateMany(std::move(*tasks));
  if (!r.ok()) return Error(r.status());
  json::array out;
  for (const auto& x : *r) out.push_back(TaskToJson(x.task));
  return Json(201, json::object{{"tasks", std::move(out)}});
}

HttpResponse Api::ListTasks(const HttpRequest& req) {
  auto q = QueryParams(req);
  if (!q.ok()) return Error(q.status());
  auto params = ParseListQuery(*q);
  if (!params.ok()) return Error(params.status());
  auto page = service_.List(*params);
  if (!page.ok()) return Error(page.status());
  return TaskPageJson(*page);
}

HttpResponse Api::GetTask(const std::string& id) { return TaskResponse(service_.Get(id)); }

HttpResponse Api::DeleteTask(const std::string& id) {
  auto st = service_.Delete(id);
  if (!st.ok()) return Error(st);
  return NoContent();
}

HttpResponse Api::CancelTask(const std::string& id) {
  auto t = service_.Cancel(id);
  if (!t.ok()) return Error(t.status());
  return Json(200, TaskToJson(*t));
}

HttpResponse Api::TaskEvents(const std::string& id) {
  auto ev = service_.Events(id);
  if (!ev.ok()) return Error(ev.status());
  json::array a;
  for (const auto& e : *ev) a.push_back(EventToJson(e));
  return Json(200, json::object{{"events", std::move(a)}});
}

HttpResponse Api::Callback(const HttpRequest& req, const std::string& id) {
  auto task = service_.Get(id);
  if (!task.ok()) return Error(task.status());
  auto body = ParseBody(req);
  if (!body.ok()) return Error(body.status());
  auto cb = ParseCallback(*body);
  if (!cb.ok()) return Error(cb.status());
  if (!CallbackTokenMatches(options_.callback_secret, id, cb->attempt, BearerToken(req))) {
    HttpResponse r =
        Error(core::UnauthenticatedError("authorization: wrong callback token for this attempt"));
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  sched::CallbackParams p{.id = id,
                          .attempt = cb->attempt,
                          .status = ToCallbackStatus(cb->status),
                          .exit_code = cb->exit_code,
                          .message = cb->message};
  auto t = service_.Callback(p);
  if (!t.ok()) return Error(t.status());
  return Json(200, TaskToJson(*t));
}

HttpResponse Api::PutQueue(const HttpRequest& req, const std::string& name) {
  auto body = ParseBody(req);
  if (!body.ok()) return Error(body.status());
  auto limits = ParseQueuePut(name, *body, clock_.Now());
  if (!limits.ok()) return Error(limits.status());
  auto put = service_.PutQueue(*limits);
  if (!put.ok()) return Error(put.status());
  // Answer with the queue as GET /v1/queues shows it, counts included.
  auto queues = service_.Queues();
  if (!queues.ok()) return Error(queues.status());
  for (const auto& q : *queues) {
    if (q.limits.name == name) return Json(200, QueueToJson(q));
  }
  return Json(200, QueueToJson({.limits = *put}));
}

HttpResponse Api::CreateSchedule(const HttpRequest& req) {
  if (schedules_ == nullptr) return Error(core::UnavailableError("schedules are not enabled"));
  auto body = ParseBody(req);
  if (!body.ok()) return Error(body.status());
  auto s = ParseCreateSchedule(*body, options_.create_defaults, clock_.Now());
  if (!s.ok()) return Error(s.status());
  auto created = schedules_->Create(std::move(*s));
  if (!created.ok()) return Error(created.status());
  HttpResponse resp = Json(201, ScheduleToJson(*created));
  resp.headers.emplace_back("Location", "/v1/schedules/" + created->id);
  return resp;
}

HttpResponse Api::ListSchedules(const HttpRequest& req) {
  if (schedules_ == nullptr) return Error(core::UnavailableError("schedules are not enabled"));
  auto q = QueryParams(req);
  if (!q.ok()) return Error(q.status());
  auto params = ParseScheduleListQuery(*q);
  if (!params.ok()) return Error(params.status());
  auto page = schedules_->List(*params);
  if (!page.ok()) return Error(page.status());
  json::array a;
  for (const auto& s : page->schedules) a.push_back(ScheduleToJson(s));
  return Json(200, json::object{{"schedules", std::move(a)},
                                {"next_cursor", page->next ? json::value(*page->next)
                                                           : json::value(nullptr)}});
}

HttpResponse Api::GetSchedule(const std::string& id) {
  if (schedules_ == nullptr) return Error(core::UnavailableError("schedules are not enabled"));
  auto s = schedules_->Get(id);
  if (!s.ok()) return Error(s.status());
  return Json(200, ScheduleToJson(*s));
}

HttpResponse Api::DeleteSchedule(const std::string& id) {
  if (schedules_ == nullptr) return Error(core::UnavailableError("schedules are not enabled"));
  auto st = schedules_->Delete(id);
  if (!st.ok()) return Error(st);
  return NoContent();
}

HttpResponse Api::PauseSchedule(const std::string& id, bool pause) {
  if (schedules_ == nullptr) return Error(core::UnavailableError("schedules are not enabled"));
  auto s = pause ? schedules_->Pause(id) : schedules_->Resume(id);
  if (!s.ok()) return Error(s.status());
  return Json(200, ScheduleToJson(*s));
}

HttpResponse Api::ListQueues() {
  auto queues = service_.Queues();
  if (!queues.ok()) return Error(queues.status());
  json::array a;
  for (const auto& q : *queues) a.push_back(QueueToJson(q));
  return Json(200, json::object{{"queues", std::move(a)}});
}

HttpResponse Api::Nodes() {
  auto nodes = service_.Nodes();
  if (!nodes.ok()) return Error(nodes.status());
  const core::Time now = clock_.Now();
  const core::Duration window = options_.node_alive_within;
  json::array a;
  for (const auto& n : *nodes) {
    json::object o = NodeToJson(n);
    o["alive"] = window == core::Duration::zero() || now - n.last_heartbeat <= window;
    a.push_back(std::move(o));
  }
  return Json(200, json::object{{"nodes", std::move(a)}});
}

HttpResponse Api::Ready() {
  auto st = service_.Ready();
  if (!st.ok()) return Error(core::UnavailableError("store: not reachable"));
  return Json(200, json::object{{"status", "ready"}});
}

void Api::CountRequest(const std::string& route, unsigned status) {
  std::lock_guard lk(metrics_mu_);
  ++requests_[{route, status}];
}

HttpResponse Api::Metrics() {
  std::ostringstream out;
  out << "# HELP sked_build_info Build information.\n# TYPE sked_build_info gauge\n"
      << "sked_build_info{version=\"" << options_.version << "\"} 1\n";
  if (engine_) {
    auto s = engine_->Stats();
    auto counter = [&](const char* name, const char* help, int64_t v) {
      out << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n"
          << name << " " << v << "\n";
    };
    counter("sked_tasks_claimed_total", "Attempts claimed by this node.", s.claimed);
    counter("sked_tasks_succeeded_total", "Attempts that succeeded on this node.", s.succeeded);
    counter("sked_tasks_failed_total", "Tasks that failed for good on this node.", s.failed);
    counter("sked_tasks_retried_total", "Failed attempts scheduled again.", s.retried);
    counter("sked_tasks_rescued_total", "Tasks rescued from expired leases.", s.rescued);
    counter("sked_tasks_timed_out_total", "Attempts stopped by their timeout.", s.timed_out);
    counter("sked_leases_lost_total", "Attempts stopped because their lease was lost.",
            s.leases_lost);
    out << "# HELP sked_tasks_running Attempts running on this node.\n"
        << "# TYPE sked_tasks_running gauge\nsked_tasks_running " << s.running << "\n"
        << "# HELP sked_leader 1 when this node holds the leader lease.\n"
        << "# TYPE sked_leader gauge\nsked_leader " << (s.leader ? 1 : 0) << "\n";
    for (const core::RunnerCounter& c : engine_->RunnerCounters()) {
      const std::string name = "sked_" + c.name;
      out << "# HELP " << name << " " << c.help << "\n# TYPE " << name << " "
          << (c.gauge ? "gauge" : "counter") << "\n" << name << " " << c.value << "\n";
    }
  }
  auto counts = service_.CountByState();
  if (counts.ok()) {
    out << "# HELP sked_tasks Live tasks by state.\n# TYPE sked_tasks gauge\n";
    for (auto st : {core::TaskState::kScheduled, core::TaskState::kProvisioning,
                    core::TaskState::kRunning, core::TaskState::kSucceeded,
                    core::TaskState::kFailed, core::TaskState::kCancelled}) {
      auto it = counts->find(st);
      out << "sked_tasks{state=\"" << core::TaskStateName(st) << "\"} "
          << (it == counts->end() ? 0 : it->second) << "\n";
    }
  }
  out << "# HELP sked_http_requests_total HTTP requests by route and status.\n"
      << "# TYPE sked_http_requests_total counter\n";
  {
    std::lock_guard lk(metrics_mu_);
    for (const auto& [k, v] : requests_)
      out << "sked_http_requests_total{route=\"" << k.first << "\",code=\"" << k.second
          << "\"} " << v << "\n";
  }
  return Text(200, out.str(), "text/plain; version=0.0.4");
}

// --- The original briefs' routes -----------------------------------------------

HttpResponse Api::LegacySchedule(const HttpRequest& req) {
  boost::system::error_code ec;
  json::value body = json::parse(req.body, ec);
  if (ec) return LegacyError(400, "body is not valid JSON");
  auto task = ParseLegacySchedule(body, options_.create_defaults, clock_.Now());
  if (!task.ok()) return LegacyError(400, task.status().message());
  auto r = service_.Create(std::move(*task));
  if (!r.ok()) return Error(r.status());
  return Json(200, LegacyJobToJson(r->task));
}

HttpResponse Api::LegacyList() {
  // The brief's list is unpaged: walk every page, oldest first.
  json::array out;
  core::TaskListParams p;
  p.ascending = true;
  p.limit = 1000;
  while (true) {
    auto page = service_.List(p);
    if (!page.ok()) return Error(page.status());
    for (const auto& t : page->tasks) out.push_back(LegacyJobToJson(t));
    if (!page->next) break;
    p.after = page->next;
  }
  return Json(200, out);
}

HttpResponse Api::LegacyStatus(const std::string& id) {
  auto t = service_.Get(id);
  if (!t.ok()) {
    if (t.status().code() == core::StatusCode::kNotFound)
      return LegacyError(400, LegacyNotFoundMessage(id));
    return Error(t.status());
  }
  return Text(200, std::string(LegacyStatusWord(t->state)));
}

HttpResponse Api::LegacyCallback(const HttpRequest& req, const std::string& id) {
  auto task = service_.Get(id);
  if (!task.ok()) {
    if (task.status().code() == core::StatusCode::kNotFound)
      return LegacyError(400, LegacyNotFoundMessage(id));
    return Error(task.status());
  }
  if (!CallbackTokenMatches(options_.callback_secret, id, task->attempt, BearerToken(req)))
    return LegacyError(401, "wrong callback token");
  boost::system::error_code ec;
  json::value body = req.body.empty() ? json::value(json::object{}) : json::parse(req.body, ec);
  if (ec) return LegacyError(400, "body is not valid JSON");
  auto cb = ParseLegacyCallback(body);
  if (!cb.ok()) return LegacyError(400, cb.status().message());
  sched::CallbackParams p{.id = id,
                          .attempt = task->attempt,
                          .status = ToCallbackStatus(cb->status),
                          .exit_code = std::nullopt,
                          .message = cb->message};
  auto t = service_.Callback(p);
  if (!t.ok()) return LegacyError(HttpStatusFor(t.status().code()), t.status().message());
  return Json(200, LegacyJobToJson(*t));
}

HttpResponse Api::BriefCreate(const HttpRequest& req, bool task_set) {
  auto body = ParseBody(req);
  if (!body.ok()) return Error(body.status());
  auto task = task_set ? ParseTaskSet(*body, clock_.Now()) : ParseTaskBrief(*body, clock_.Now());
  if (!task.ok()) return Error(task.status());
  auto r = service_.Create(std::move(*task));
  if (!r.ok()) return Error(r.status());
  HttpResponse resp = Json(201, TaskToJson(r->task));
  resp.headers.emplace_back("Location", "/v1/tasks/" + r->task.id);
  return resp;
}

HttpResponse Api::BriefList(const HttpRequest& req) {
  auto q = QueryParams(req);
  if (!q.ok()) return Error(q.status());
  auto params = ParseLegacyTaskQuery(*q);
  if (!params.ok()) return Error(params.status());
  auto page = service_.List(*params);
  if (!page.ok()) return Error(page.status());
  return TaskPageJson(*page);
}

}  // namespace sked::api
