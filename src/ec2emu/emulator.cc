// File: ec2emu/emulator.cc
//
// The runtime around the model: listeners, the lifecycle thread that starts
// and ends instance processes, and the control API. The model decides states;
// this file only follows them (it polls the model's states each tick), so a
// state change made by any route, EC2 or control, is acted on the same way.
#include "ec2emu/emulator.h"

#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "api/http_server.h"
#include "ec2emu/ec2_api.h"
#include "ec2emu/imds.h"
#include "ec2emu/internal/util.h"
#include "ec2emu/process_runner.h"
#include "ec2emu/sigv4_verify.h"

extern char** environ;

namespace sked::ec2emu {
namespace {

namespace json = boost::json;
using core::Status;
using core::StatusOr;
using core::Time;

constexpr char kControlPrefix[] = "/_emulator/";
constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// How long Stop() waits for SIGKILLed processes to vanish.
constexpr std::chrono::seconds kStopKillWait{2};

api::HttpResponse Json(unsigned status, const json::value& body) {
  api::HttpResponse r;
  r.status = status;
  r.body = json::serialize(body);
  return r;
}

api::HttpResponse JsonError(unsigned status, std::string message) {
  return Json(status, json::object{{"error", message}});
}

api::HttpResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case core::StatusCode::kNotFound:
      return JsonError(404, s.message());
    case core::StatusCode::kInvalidArgument:
      return JsonError(400, s.message());
    case core::StatusCode::kFailedPrecondition:
      return JsonError(409, s.message());
    default:
      return JsonError(500, s.message());
  }
}

json::object InstanceJson(const Instance& i) {
  json::object tags;
  for (const Tag& t : i.tags) tags[t.key] = t.value;
  json::object o{
      {"instance_id", i.instance_id},
      {"state", StateName(i.state)},
      {"instance_type", i.instance_type},
      {"subnet_id", i.subnet_id},
      {"image_id", i.image_id},
      {"state_reason_code", i.state_reason_code},
      {"launch_time", internal::FormatEc2Time(i.launch_time)},
      {"client_token", i.client_token},
      {"spot_instance_request_id", i.spot ? i.spot->id : ""},
      {"tags", std::move(tags)},
      {"imds_endpoint", i.imds_endpoint},
      {"console_log", i.console_log},
      {"lifecycle", i.spot ? "spot" : "on-demand"},
      {"spot_request_state", i.spot ? i.spot->state : ""},
      {"spot_request_status", i.spot ? i.spot->status_code : ""},
      {"interruption_time",
       i.interruption_time ? internal::FormatIsoSeconds(*i.interruption_time) : ""},
      {"work_dir", i.work_dir},
  };
  return o;
}

json::object FaultsJson(const Faults& f) {
  json::array types, subnets;
  for (const std::string& t : f.capacity_error_types) types.emplace_back(t);
  for (const std::string& s : f.capacity_error_subnets) subnets.emplace_back(s);
  return json::object{{"capacity_error_types", std::move(types)},
                      {"capacity_error_subnets", std::move(subnets)},
                      {"capacity_error_code", f.capacity_error_code},
                      {"throttle_next", f.throttle_next},
                      {"not_found_describes", f.not_found_describes}};
}

StatusOr<std::set<std::string>> StringSet(const json::value& v, std::string_view field) {
  if (!v.is_array()) return core::InvalidArgumentError(std::string(field) + ": want an array");
  std::set<std::string> out;
  for (const json::value& e : v.as_array()) {
    if (!e.is_string()) {
      return core::InvalidArgumentError(std::string(field) + ": want an array of strings");
    }
    out.insert(std::string(e.as_string()));
  }
  return out;
}

StatusOr<int> Count(const json::value& v, std::string_view field) {
  if (!v.is_int64() && !v.is_uint64()) {
    return core::InvalidArgumentError(std::string(field) + ": want a non-negative integer");
  }
  int64_t n = v.is_int64() ? v.as_int64() : static_cast<int64_t>(v.as_uint64());
  if (n < 0 || n > 1000000) {
    return core::InvalidArgumentError(std::string(field) + ": want 0..1000000");
  }
  return static_cast<int>(n);
}

// Applies the fields present in `body` to `f`.
Status ApplyFaults(const std::string& body, Faults& f) {
  boost::system::error_code ec;
  json::value v = json::parse(body.empty() ? "{}" : body, ec);
  if (ec || !v.is_object()) return core::InvalidArgumentError("body: want a JSON object");
  for (const auto& [key, value] : v.as_object()) {
    if (key == "capacity_error_types") {
      ASSIGN_OR_RETURN(f.capacity_error_types, StringSet(value, key));
    } else if (key == "capacity_error_subnets") {
      ASSIGN_OR_RETURN(f.capacity_error_subnets, StringSet(value, key));
    } else if (key == "capacity_error_code") {
      if (!value.is_string() || !IsCapacityErrorCode(value.as_string())) {
        return core::InvalidArgumentError(
            "capacity_error_code: want InsufficientInstanceCapacity, SpotMaxPriceTooLow or "
            "MaxSpotInstanceCountExceeded");
      }
      f.capacity_error_code = std::string(value.as_string());
    } else if (key == "throttle_next") {
      ASSIGN_OR_RETURN(f.throttle_next, Count(value, key));
    } else if (key == "not_found_describes") {
      ASSIGN_OR_RETURN(f.not_found_describes, Count(value, key));
    } else {
      return core::InvalidArgumentError("unknown field '" + std::string(key) + "'");
    }
  }
  return core::OkStatus();
}

// The optional {"warning_seconds": N} of an interrupt call.
StatusOr<std::optional<double>> WarningSeconds(const std::string& body) {
  if (body.empty()) return std::optional<double>();
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return core::InvalidArgumentError("body: want a JSON object");
  std::optional<double> out;
  for (const auto& [key, value] : v.as_object()) {
    if (key != "warning_seconds") {
      return core::InvalidArgumentError("unknown field '" + std::string(key) + "'");
    }
    if (!value.is_number()) return core::InvalidArgumentError("warning_seconds: want a number");
    double s = value.to_number<double>();
    if (!(s >= 0 && s <= 86400)) {
      return core::InvalidArgumentError("warning_seconds: want 0..86400");
    }
    out = s;
  }
  return out;
}

std::chrono::microseconds Seconds(double s) {
  return std::chrono::microseconds(static_cast<int64_t>(s * 1e6));
}

}  // namespace

Status ValidateEmulatorOptions(const EmulatorOptions& o) {
  using namespace std::chrono;
  if (o.region.empty()) return core::InvalidArgumentError("--region: must not be empty");
  for (const aws::Credentials& c : o.credentials) {
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
      return core::InvalidArgumentError("--credentials: want ACCESS_KEY_ID:SECRET");
    }
  }
  if (o.pending_delay < microseconds(0) || o.pending_delay > hours(1)) {
    return core::InvalidArgumentError("--pending-seconds: must be in 0..3600");
  }
  if (o.spot_warning < microseconds(0) || o.spot_warning > hours(1)) {
    return core::InvalidArgumentError("--spot-warning-seconds: must be in 0..3600");
  }
  if (o.terminate_grace < microseconds(0) || o.terminate_grace > minutes(10)) {
    return core::InvalidArgumentError("--terminate-grace-seconds: must be in 0..600");
  }
  if (o.faults.throttle_next < 0) return core::InvalidArgumentError("--throttle: must be >= 0");
  if (!IsCapacityErrorCode(o.faults.capacity_error_code)) {
    return core::InvalidArgumentError("capacity error code " + o.faults.capacity_error_code +
                                      " is not one the emulator injects");
  }
  for (const auto& [k, v] : o.instance_env) {
    if (k.empty() || k.find('=') != std::string::npos) {
      return core::InvalidArgumentError("--instance-env: want KEY=VALUE, got key '" + k + "'");
    }
  }
  if (o.tick <= milliseconds(0)) return core::InvalidArgumentError("tick must be positive");
  return core::OkStatus();
}

struct Emulator::Impl {
  // What the emulator keeps per instance besides the model's record.
  struct Runtime {
    std::string dir;
    std::string console_log;
    std::string shim_dir;
    std::string imds_endpoint;
    std::shared_ptr<ImdsService> imds_service;
    std::unique_ptr<api::HttpServer> imds;
    bool spawn_done = false;
    pid_t pid = -1;  // Also the process group id.
    bool reaped = false;
    bool group_gone = false;
    std::optional<Time> sigterm_at;
    bool sigkill_sent = false;
    bool cleanup_started = false;
    std::shared_ptr<std::atomic<bool>> cleanup_done = std::make_shared<std::atomic<bool>>(false);
    bool finalized = false;
  };

  explicit Impl(EmulatorOptions o)
      : options(std::move(o)),
        clock(options.clock != nullptr ? *options.clock : core::SystemClock::Get()),
        logger(options.logger != nullptr ? *options.logger : core::NullLogger::Get()),
        model(ModelOptions{.region = options.region, .pending_delay = options.pending_delay}),
        ec2(model, keys, clock,
            Ec2ApiOptions{.region = options.region,
                          .on_launched = [this](const Reservation& r) { OnLaunched(r); },
                          .logger = &logger}) {}

  void Log(const std::string& line) { logger.Log(core::LogLevel::kInfo, line); }

  api::HttpResponse Handle(const api::HttpRequest& request) {
    if (request.path.starts_with(kControlPrefix)) return Control(request);
    return ec2.Handle(request);
  }

  // ---- launch ---------------------------------------------------------------

  std::vector<std::string> InstanceEnvironment(const Runtime& rt, bool imds_enabled) const {
    std::map<std::string, std::string> env;
    for (const std::string& e : base_env) {
      size_t eq = e.find('=');
      if (eq == std::string::npos || eq == 0) continue;
      env[e.substr(0, eq)] = e.substr(eq + 1);
    }
    // A real instance has IMDS; the emulator's own environment (often a test
    // that switched IMDS off for itself) must not switch it off in there.
    env.erase("AWS_EC2_METADATA_DISABLED");
    for (const auto& [k, v] : options.instance_env) env[k] = v;
    if (imds_enabled) {
      env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = rt.imds_endpoint;
    } else {
      env.erase("AWS_EC2_METADATA_SERVICE_ENDPOINT");
      env["AWS_EC2_METADATA_DISABLED"] = "true";
    }
    env["SKED_EC2_EMULATOR"] = "1";
    auto path = env.find("PATH");
    env["PATH"] = rt.shim_dir + ":" + (path == env.end() ? kDefaultPath : path->second);
    std::vector<std::string> out;
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
  }

  // Runs on the EC2 handler thread before RunInstances answers, so the IMDS
  // endpoint exists as soon as the caller knows the instance id.
  void OnLaunched(const Reservation& r) {
    for (const Instance& inst : r.instances) {
      Runtime rt;
      rt.dir = work_dir + "/" + inst.instance_id;
      rt.console_log = rt.dir + "/console.log";
      rt.shim_dir = rt.dir + "/.emulator/bin";
      Status shims = WriteShutdownShims(
          rt.shim_dir, control_base + "_emulator/instances/" + inst.instance_id + "/shutdown");
      if (!shims.ok()) Log("instance " + inst.instance_id + ": " + shims.message());
      std::ofstream(rt.console_log, std::ios::app);  // Exists from launch on.

      if (inst.http_endpoint == "enabled") {
        std::optional<RoleCredentials> role;
        if (!inst.role_name.empty()) {
          Time now = clock.Now();
          Time expiration = now + kMintedCredentialsLifetime;
          role = RoleCredentials{keys.Mint(expiration), now, expiration};
        }
        rt.imds_service = std::make_shared<ImdsService>(model, inst.instance_id, std::move(role),
                                                        [this] { return clock.Now(); });
        auto service = rt.imds_service;
        rt.imds = std::make_unique<api::HttpServer>(
            api::HttpServerOptions{.host = "127.0.0.1", .port = 0, .io_threads = 1,
                                   .handler_threads = 2},
            [service](const api::HttpRequest& req) { return service->Handle(req); });
        Status started = rt.imds->Start();
        if (started.ok()) {
          rt.imds_endpoint = "http://127.0.0.1:" + std::to_string(rt.imds->port()) + "/";
        } else {
          Log("instance " + inst.instance_id + ": IMDS: " + started.message());
          rt.imds.reset();
        }
      }
      model.SetRuntimeInfo(inst.instance_id, rt.imds_endpoint, rt.dir, rt.console_log);
      Log("instance " + inst.instance_id + " launched (" + inst.instance_type +
          (inst.spot ? ", spot" : "") + "), IMDS " +
          (rt.imds_endpoint.empty() ? "off" : rt.imds_endpoint));
      // Only now does the lifecycle thread see it: dir, shims and IMDS exist.
      std::lock_guard<std::mutex> lock(runtime_mu);
      runtimes[inst.instance_id] = std::move(rt);
    }
  }

  // ---- lifecycle ------------------------------------------------------------

  void StartUserData(const std::string& id, Runtime& rt) {
    rt.spawn_done = true;
    if (!options.run_user_data) return;
    StatusOr<Instance> inst = model.Get(id);
    if (!inst.ok() || !inst->has_user_data) return;
    StatusOr<pid_t> pid = SpawnUserData(UserDataSpawn{
        .dir = rt.dir,
        .script_path = rt.dir + "/.emulator/user-data",
        .script = inst->user_data,
        .console_log = rt.console_log,
        .env = InstanceEnvironment(rt, inst->http_endpoint == "enabled"),
    });
    if (pid.ok()) {
      rt.pid = *pid;
      Log("instance " + id + " running; user data started as process group " +
          std::to_string(*pid));
    } else {
      Log("instance " + id + ": user data did not start: " + pid.status().message());
    }
  }

  void StartCleanup(const std::string& id, Runtime& rt) {
    rt.cleanup_started = true;
    if (docker_path.empty()) {
      rt.cleanup_done->store(true);
      return;
    }
    std::lock_guard<std::mutex> lock(cleanup_mu);
    cleanup_threads.emplace_back([docker = docker_path, id, done = rt.cleanup_done] {
      RemoveInstanceContainers(docker, id);
      done->store(true);
    });
  }

  // shutting-down: SIGTERM, SIGKILL after the grace, containers removed once
  // the processes are gone, then terminated.
  void DriveShutdown(const std::string& id, Runtime& rt, Time now) {
    if (rt.pid > 0 && !rt.group_gone) {
      if (!rt.sigterm_at) {
        SignalGroup(rt.pid, SIGTERM);
        rt.sigterm_at = now;
        Log("instance " + id + " shutting down: SIGTERM to process group " +
            std::to_string(rt.pid));
      } else if (!rt.sigkill_sent && now - *rt.sigterm_at >= options.terminate_grace) {
        SignalGroup(rt.pid, SIGKILL);
        rt.sigkill_sent = true;
        Log("instance " + id + ": grace over, SIGKILL to process group " + std::to_string(rt.pid));
      }
      if (!rt.reaped) rt.reaped = ReapIfExited(rt.pid);
      rt.group_gone = !ProcessGroupAlive(rt.pid);
      if (!rt.group_gone) return;
    }
    if (!rt.cleanup_started) StartCleanup(id, rt);
    if (!rt.cleanup_done->load()) return;
    model.MarkTerminated(id, now);
    Log("instance " + id + " terminated");
  }

  // terminated: nothing of the instance may outlive it.
  void Finalize(Runtime& rt, const std::string& id) {
    if (rt.pid > 0 && !rt.group_gone) {
      SignalGroup(rt.pid, SIGKILL);
      rt.group_gone = true;
    }
    if (!rt.cleanup_started) StartCleanup(id, rt);
    if (rt.imds) {
      rt.imds->Stop();
      rt.imds.reset();
    }
    rt.finalized = true;
  }

  void Tick() {
    Time now = clock.Now();
    model.Advance(now);
    std::lock_guard<std::mutex> lock(runtime_mu);
    for (const InstanceStatus& st : model.Statuses()) {
      auto it = runtimes.find(st.instance_id);
      if (it == runtimes.end()) continue;  // OnLaunched has not finished yet.
      Runtime& rt = it->second;
      switch (st.state) {
        case InstanceState::kPending:
          break;
        case InstanceState::kRunning:
          if (!rt.spawn_done) StartUserData(st.instance_id, rt);
          break;
        case InstanceState::kShuttingDown:
          DriveShutdown(st.instance_id, rt, now);
          break;
        case InstanceState::kTerminated:
          if (!rt.finalized) Finalize(rt, st.instance_id);
          break;
      }
      if (rt.pid > 0 && !rt.reaped) rt.reaped = ReapIfExited(rt.pid);
    }
  }

  void TickLoop() {
    std::unique_lock<std::mutex> lock(tick_mu);
    while (!stopping) {
      lock.unlock();
      Tick();
      lock.lock();
      clock.WaitUntil(lock, tick_cv, clock.Now() + options.tick, [this] { return stopping; });
    }
  }

  // ---- control API ----------------------------------------------------------

  api::HttpResponse InstanceAction(const std::string& id, const std::string& action,
                                   const api::HttpRequest& request) {
    Time now = clock.Now();
    StatusOr<Instance> result = core::NotFoundError("");
    if (action == "interrupt") {
      StatusOr<std::optional<double>> warning = WarningSeconds(request.body);
      if (!warning.ok()) return FromStatus(warning.status());
      std::chrono::microseconds w = warning->has_value() ? Seconds(**warning)
                                                         : options.spot_warning;
      result = model.Interrupt(id, w, now);
      if (result.ok()) Log("instance " + id + " interrupted; terminates at " +
                           internal::FormatIsoSeconds(*result->interruption_time));
    } else if (action == "rebalance") {
      result = model.Rebalance(id, now);
    } else if (action == "shutdown") {
      result = model.Shutdown(id, now);
      if (result.ok()) Log("instance " + id + ": the OS asked to shut down");
    } else if (action == "kill") {
      result = model.Kill(id, now);
      if (result.ok()) {
        // At once, as a host failure would: no SIGTERM, no grace. The
        // containers go before the answer so a caller sees a clean host.
        std::lock_guard<std::mutex> lock(runtime_mu);
        auto it = runtimes.find(id);
        if (it != runtimes.end() && !it->second.cleanup_started) {
          Runtime& rt = it->second;
          if (rt.pid > 0) SignalGroup(rt.pid, SIGKILL);
          rt.group_gone = true;
          rt.cleanup_started = true;
          RemoveInstanceContainers(docker_path, id);
          rt.cleanup_done->store(true);
        }
        Log("instance " + id + " killed (Server.InternalError)");
      }
    } else {
      return JsonError(404, "no such instance action '" + action + "'");
    }
    if (!result.ok()) {
      if (result.status().code() == core::StatusCode::kNotFound) {
        return JsonError(404, "no instance " + id);
      }
      return FromStatus(result.status());
    }
    return Json(200, InstanceJson(*result));
  }

  api::HttpResponse Control(const api::HttpRequest& request) {
    const std::string& path = request.path;
    const std::string& method = request.method;
    auto wrong_method = [&](const char* allowed) {
      api::HttpResponse r = JsonError(405, method + " is not allowed on " + path);
      r.headers.emplace_back("Allow", allowed);
      return r;
    };
    if (path == "/_emulator/health") {
      if (method != "GET") return wrong_method("GET");
      return Json(200, json::object{{"ok", true}});
    }
    if (path == "/_emulator/instances") {
      if (method != "GET") return wrong_method("GET");
      model.Advance(clock.Now());
      json::array list;
      for (const Instance& i : model.List()) list.emplace_back(InstanceJson(i));
      return Json(200, json::object{{"instances", std::move(list)}});
    }
    if (path == "/_emulator/faults") {
      if (method == "GET") return Json(200, FaultsJson(model.faults()));
      if (method == "DELETE") {
        model.ClearFaults();
        return Json(200, FaultsJson(model.faults()));
      }
      if (method == "POST") {
        std::lock_guard<std::mutex> lock(faults_mu);  // Read-modify-write.
        Faults f = model.faults();
        Status s = ApplyFaults(request.body, f);
        if (!s.ok()) return FromStatus(s);
        model.SetFaults(f);
        Log("faults set: " + json::serialize(FaultsJson(f)));
        return Json(200, FaultsJson(f));
      }
      return wrong_method("GET, POST, DELETE");
    }
    const std::string prefix = "/_emulator/instances/";
    if (path.starts_with(prefix)) {
      std::string rest = path.substr(prefix.size());
      size_t slash = rest.find('/');
      std::string id = rest.substr(0, slash);
      if (slash == std::string::npos) {
        if (method != "GET") return wrong_method("GET");
        model.Advance(clock.Now());
        StatusOr<Instance> inst = model.Get(id);
        if (!inst.ok()) return JsonError(404, "no instance " + id);
        return Json(200, InstanceJson(*inst));
      }
      if (method != "POST") return wrong_method("POST");
      return InstanceAction(id, rest.substr(slash + 1), request);
    }
    return JsonError(404, "no such route " + path);
  }

  // ---- stop -----------------------------------------------------------------

  void StopAll() {
    if (server) server->Stop();
    {
      std::lock_guard<std::mutex> lock(tick_mu);
      stopping = true;
    }
    tick_cv.notify_all();
    if (ticker.joinable()) ticker.join();

    Time now = clock.Now();
    std::vector<std::string> live;
    for (const InstanceStatus& st : model.Statuses()) {
      if (st.state == InstanceState::kPending || st.state == InstanceState::kRunning) {
        live.push_back(st.instance_id);
      }
    }
    if (!live.empty()) (void)model.TerminateInstances(live, now);

    std::lock_guard<std::mutex> lock(runtime_mu);
    // SIGTERM every group, wait out the grace, then SIGKILL what is left.
    auto alive = [&] {
      bool any = false;
      for (auto& [id, rt] : runtimes) {
        if (rt.pid > 0 && !rt.group_gone) {
          if (!rt.reaped) rt.reaped = ReapIfExited(rt.pid);
          rt.group_gone = !ProcessGroupAlive(rt.pid);
          any = any || !rt.group_gone;
        }
      }
      return any;
    };
    for (auto& [id, rt] : runtimes) {
      if (rt.pid > 0 && !rt.group_gone && !rt.sigterm_at) SignalGroup(rt.pid, SIGTERM);
    }
    auto grace_end = std::chrono::steady_clock::now() + options.terminate_grace;
    while (alive() && std::chrono::steady_clock::now() < grace_end) {
      std::this_thread::sleep_for(options.tick);
    }
    for (auto& [id, rt] : runtimes) {
      if (rt.pid > 0 && !rt.group_gone) SignalGroup(rt.pid, SIGKILL);
    }
    auto kill_end = std::chrono::steady_clock::now() + kStopKillWait;
    while (alive() && std::chrono::steady_clock::now() < kill_end) {
      std::this_thread::sleep_for(options.tick);
    }
    for (auto& [id, rt] : runtimes) {
      rt.group_gone = true;
      if (!rt.cleanup_started) StartCleanup(id, rt);
    }
    {
      std::lock_guard<std::mutex> cl(cleanup_mu);
      for (std::thread& t : cleanup_threads) t.join();
      cleanup_threads.clear();
    }
    for (auto& [id, rt] : runtimes) {
      model.MarkTerminated(id, now);
      if (rt.imds) {
        rt.imds->Stop();
        rt.imds.reset();
      }
      if (rt.pid > 0 && !rt.reaped) rt.reaped = ReapIfExited(rt.pid);
      rt.finalized = true;
    }
    if (owns_work_dir && !work_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(work_dir, ec);
    }
  }

  EmulatorOptions options;
  const core::Clock& clock;
  core::Logger& logger;
  Ec2Model model;
  KeyStore keys;
  Ec2Api ec2;
  std::unique_ptr<api::HttpServer> server;
  std::string control_base;  // "http://127.0.0.1:PORT/"
  std::string work_dir;
  bool owns_work_dir = false;
  std::string docker_path;
  std::vector<std::string> base_env;

  std::mutex runtime_mu;
  std::map<std::string, Runtime> runtimes;  // Guarded by runtime_mu.
  std::mutex faults_mu;                     // Serializes POST /_emulator/faults.
  std::mutex cleanup_mu;
  std::vector<std::thread> cleanup_threads;  // Guarded by cleanup_mu.

  std::mutex tick_mu;
  std::condition_variable tick_cv;
  bool stopping = false;  // Guarded by tick_mu.
  std::thread ticker;
  std::once_flag stop_once;
};

Emulator::Emulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Emulator::~Emulator() { Stop(); }

StatusOr<std::unique_ptr<Emulator>> Emulator::Start(EmulatorOptions options) {
  RETURN_IF_ERROR(ValidateEmulatorOptions(options));
  if (options.credentials.empty()) options.credentials.push_back({"test", "test", ""});
  auto impl = std::make_unique<Impl>(std::move(options));
  Impl& m = *impl;
  for (const aws::Credentials& c : m.options.credentials) {
    m.keys.AddStatic(c.access_key_id, c.secret_access_key);
  }
  m.model.SetFaults(m.options.faults);

  if (m.options.base_environment) {
    m.base_env = *m.options.base_environment;
  } else {
    for (char** e = environ; *e != nullptr; ++e) m.base_env.emplace_back(*e);
  }
  std::string path = kDefaultPath;
  for (const std::string& e : m.base_env) {
    if (e.starts_with("PATH=")) path = e.substr(5);
  }
  m.docker_path = FindOnPath("docker", path);

  if (m.options.work_dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sked-ec2-emulator-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) {
      return core::InternalError("cannot create a temporary work directory");
    }
    m.work_dir = tmpl;
    m.owns_work_dir = true;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(m.options.work_dir, ec);
    if (ec) return core::InternalError("--work-dir " + m.options.work_dir + ": " + ec.message());
    m.work_dir = std::filesystem::absolute(m.options.work_dir).string();
  }

  m.server = std::make_unique<api::HttpServer>(
      api::HttpServerOptions{.host = m.options.host, .port = m.options.port},
      [&m](const api::HttpRequest& req) { return m.Handle(req); });
  Status started = m.server->Start();
  if (!started.ok()) {
    if (m.owns_work_dir) std::filesystem::remove_all(m.work_dir);
    return started;
  }
  // Shims inside instances call back over loopback even when the listener
  // binds every address.
  std::string host = m.options.host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  m.control_base = "http://" + host + ":" + std::to_string(m.server->port()) + "/";
  m.ticker = std::thread([&m] { m.TickLoop(); });
  return std::unique_ptr<Emulator>(new Emulator(std::move(impl)));
}

uint16_t Emulator::port() const { return impl_->server->port(); }

std::string Emulator::url() const { return impl_->control_base; }

const std::string& Emulator::work_dir() const { return impl_->work_dir; }

api::HttpResponse Emulator::Handle(const api::HttpRequest& request) {
  return impl_->Handle(request);
}

void Emulator::Stop() {
  if (!impl_) return;
  std::call_once(impl_->stop_once, [this] { impl_->StopAll(); });
}

Ec2Model& Emulator::TEST_model() { return impl_->model; }

}  // namespace sked::ec2emu
