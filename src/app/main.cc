// File: app/main.cc
//
// The composition root: reads the command line (and SKED_* variables), builds
// the store, the executors, the engine, the task service and the HTTP API, runs
// them, and stops them in reverse order on SIGTERM/SIGINT. Only this file knows
// every concrete class.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "api/api.h"
#include "api/callback_token.h"
#include "api/http_server.h"
#include "app/config.h"
#include "core/clock.h"
#include "core/logger.h"
#include "exec/builtin/builtin_executor.h"
#include "sched/engine.h"
#include "sched/executor_registry.h"
#include "sched/task_service.h"
#include "store/sqlite/sqlite_store.h"

namespace sked::app {
namespace {

constexpr char kVersion[] = "0.1.0";

// Adapts core::Logger to spdlog.
class SpdLogger final : public core::Logger {
 public:
  void Log(core::LogLevel level, std::string_view message) override {
    switch (level) {
      case core::LogLevel::kDebug: spdlog::debug("{}", message); break;
      case core::LogLevel::kInfo: spdlog::info("{}", message); break;
      case core::LogLevel::kWarn: spdlog::warn("{}", message); break;
      case core::LogLevel::kError: spdlog::error("{}", message); break;
    }
  }
};

std::string DefaultNodeId() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

// The callback secret: the flag's, or one generated once and kept beside the
// database so callbacks stay valid across restarts.
core::StatusOr<std::string> LoadOrCreateSecret(const std::filesystem::path& dir) {
  auto path = dir / "callback.secret";
  std::ifstream in(path);
  std::string secret;
  if (in && std::getline(in, secret) && secret.size() >= 32) return secret;
  std::random_device rd;
  static const char* kHex = "0123456789abcdef";
  secret.clear();
  for (int i = 0; i < 64; ++i) secret.push_back(kHex[rd() % 16]);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  {
    std::ofstream out(path, std::ios::trunc);
    if (!out) return core::FailedPreconditionError("cannot write " + path.string());
    out << secret << "\n";
  }
  std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::owner_write,
                               ec);
  return secret;
}

int Serve(const ServeConfig& cfg) {
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  SpdLogger logger;
  const core::Clock& clock = core::SystemClock::Get();

  // Block the stop signals in every thread we are about to start; main waits
  // for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto db = ParseDbUrl(cfg.db);
  if (!db.ok()) {
    spdlog::error("{}", db.status().message());
    return 2;
  }
  std::unique_ptr<core::Store> store;
  std::filesystem::path data_dir = ".";
  if (db->kind == DbKind::kSqlite) {
    data_dir = std::filesystem::path(db->path).parent_path();
    if (data_dir.empty()) data_dir = ".";
    auto s = store::OpenSqliteStore({.path = db->path});
    if (!s.ok()) {
      spdlog::error("opening {}: {}", cfg.db, s.status().ToString());
      return 1;
    }
    store = std::move(*s);
  } else {
    spdlog::error("--db: {} is not supported by this build yet", cfg.db);
    return 2;
  }

  std::string secret = cfg.callback_secret;
  if (secret.empty()) {
    auto s = LoadOrCreateSecret(data_dir);
    if (!s.ok()) {
      spdlog::error("callback secret: {}", s.status().message());
      return 1;
    }
    secret = *s;
  }

  exec::BuiltinExecutor builtin({.time_scale = cfg.time_scale,
                                 .bar_url = cfg.bar_url,
                                 .bar_workers = exec::kDefaultBarWorkers,
                                 .bar_timeout = exec::kDefaultBarTimeout,
                                 .logger = &logger},
                                clock);
  sched::ExecutorRegistry executors;
  executors.Add(&builtin);

  api::HttpServerOptions http_options;
  http_options.host = cfg.listen_host;
  http_options.port = cfg.listen_port;
  http_options.io_threads = cfg.io_threads;
  http_options.handler_threads = cfg.handler_threads;

  // The server binds before the engine starts, so the callback URL is known.
  std::unique_ptr<api::Api> api_ptr;
  api::HttpServer server(http_options, [&api_ptr](const api::HttpRequest& r) {
    return api_ptr->Handle(r);
  });
  if (auto st = server.Start(); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  std::string callback_base = cfg.callback_url;
  if (callback_base.empty())
    callback_base = "http://" + cfg.listen_host + ":" + std::to_string(server.port());
  while (!callback_base.empty() && callback_base.back() == '/') callback_base.pop_back();

  sched::EngineOptions eo;
  eo.node_id = cfg.node_id.empty() ? DefaultNodeId() : cfg.node_id;
  eo.version = kVersion;
  eo.concurrency = cfg.concurrency;
  eo.lease = std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(cfg.lease_s));
  eo.shutdown_grace = std::chrono::duration_cast<core::Duration>(
      std::chrono::duration<double>(cfg.shutdown_grace_s));
  eo.time_scale = cfg.time_scale;
  eo.logger = &logger;
  eo.job_env = [secret, callback_base](const core::Task& t) {
    return std::map<std::string, std::string>{
        {"SKED_TASK_ID", t.id},
        {"SKED_ATTEMPT", std::to_string(t.attempt)},
        {"SKED_CALLBACK_URL", callback_base + "/v1/tasks/" + t.id + "/callback"},
        {"SKED_CALLBACK_TOKEN", api::CallbackToken(secret, t.id, t.attempt)}};
  };
  sched::Engine engine(eo, *store, executors, clock);
  sched::TaskService service(*store, &engine, clock);

  api::ApiOptions ao;
  ao.api_tokens = cfg.api_tokens;
  ao.callback_secret = secret;
  ao.version = kVersion;
  api_ptr = std::make_unique<api::Api>(ao, service, &engine, clock);

  if (auto st = engine.Start(); !st.ok()) {
    spdlog::error("engine: {}", st.message());
    return 1;
  }
  spdlog::info("sked {} node {} listening on http://{}:{} (db {})", kVersion, eo.node_id,
               cfg.listen_host, server.port(), cfg.db);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("received {}; stopping: no new claims, up to {}s for running tasks",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.shutdown_grace_s);
  engine.Stop();
  server.Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace sked::app

int main(int argc, char** argv) {
  using namespace sked::app;
  CLI::App cli{"sked: a distributed job scheduler. Runs each task at its time, exactly once."};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", kVersion);
  ServeConfig cfg;
  CLI::App* serve = cli.add_subcommand("serve", "Run the API and the scheduler on this node.");
  AddServeFlags(*serve, cfg);
  CLI11_PARSE(cli, argc, argv);
  if (auto st = ValidateServeConfig(cfg); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 2;
  }
  if (serve->parsed()) return Serve(cfg);
  return 0;
}
