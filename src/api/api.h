// File: api/api.h
//
// The HTTP API of specs/api.md: the v1 routes, the original briefs' routes,
// health, metrics, the OpenAPI document and the dashboard. Api turns an
// HttpRequest into an HttpResponse: it authenticates, decodes and validates
// (task_request.h, list_query.h, ...), calls the TaskService, and maps every
// Status to the error body through the one table in error_json.h.
//
// Thread safety: Handle() is safe to call concurrently.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "api/http_types.h"
#include "api/router.h"
#include "api/task_request.h"
#include "core/clock.h"
#include "sched/engine.h"
#include "sched/schedule_service.h"
#include "sched/task_service.h"

namespace sked::api {

struct ApiOptions {
  // Bearer tokens accepted on /v1 (but the callback) and the briefs' routes.
  // Empty: the API is open. Default: empty.
  std::vector<std::string> api_tokens;
  // Key of the per-attempt callback tokens (callback_token.h). Required.
  std::string callback_secret;
  CreateDefaults create_defaults;
  std::string version;
  // GET /v1/nodes marks a node alive while its last heartbeat is at most this
  // old (nodes beat every lease/3; the server passes 3 leases). Zero: every
  // node that ever joined counts as alive.
  core::Duration node_alive_within{};
};

class Api {
 public:
  // `service` and `clock` must outlive the Api; `engine` and `schedules` may
  // be null (then the schedule routes answer 503).
  Api(ApiOptions options, sched::TaskService& service, const sched::Engine* engine,
      const core::Clock& clock, sched::ScheduleService* schedules = nullptr);

  HttpResponse Handle(const HttpRequest& req);

  // Answers, without blocking, the requests that can be answered so: GET of
  // one task (/v1/tasks/{id}, /task/{id}) on a store with a non-blocking
  // read. Then `reply` gets what Handle would have returned, once, on
  // another thread or before this returns; true. Otherwise false, with no
  // effect: the caller uses Handle.
  bool HandleAsync(const HttpRequest& req, std::function<void(HttpResponse)> reply);

 private:
  void AddRoutes();
  bool Authorized(const HttpRequest& req) const;

  // v1
  HttpResponse CreateTask(const HttpRequest& req);
  HttpResponse CreateBatch(const HttpRequest& req);
  HttpResponse ListTasks(const HttpRequest& req);
  HttpResponse GetTask(const std::string& id);
  HttpResponse DeleteTask(const std::string& id);
  HttpResponse CancelTask(const std::string& id);
  HttpResponse TaskEvents(const std::string& id);
  HttpResponse Callback(const HttpRequest& req, const std::string& id);
  HttpResponse Nodes();
  HttpResponse PutQueue(const HttpRequest& req, const std::string& name);
  HttpResponse ListQueues();
  HttpResponse CreateSchedule(const HttpRequest& req);
  HttpResponse ListSchedules(const HttpRequest& req);
  HttpResponse GetSchedule(const std::string& id);
  HttpResponse DeleteSchedule(const std::string& id);
  HttpResponse PauseSchedule(const std::string& id, bool pause);
  HttpResponse Metrics();
  HttpResponse Ready();

  // The original briefs' routes.
  HttpResponse LegacySchedule(const HttpRequest& req);
  HttpResponse LegacyList();
  HttpResponse LegacyStatus(const std::string& id);
  HttpResponse LegacyCallback(const HttpRequest& req, const std::string& id);
  HttpResponse BriefCreate(const HttpRequest& req, bool task_set);
  HttpResponse BriefList(const HttpRequest& req);

  void CountRequest(const std::string& route, unsigned status);

  const ApiOptions options_;
  sched::TaskService& service_;
  const sched::Engine* engine_;
  const core::Clock& clock_;
  sched::ScheduleService* schedules_;
  Router router_;

  std::mutex metrics_mu_;
  std::map<std::pair<std::string, unsigned>, int64_t> requests_;  // (route, status) -> count
};

}  // namespace sked::api
