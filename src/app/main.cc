// File: app/main.cc
//
// The composition root: reads the command line (and SKED_* variables), builds
// the store, the executors, the engine, the task service and the HTTP API, runs
// them, and stops them in reverse order on SIGTERM/SIGINT. Only this file knows
// every concrete class.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "api/api.h"
#include "api/callback_token.h"
#include "api/http_server.h"
#include "aws/credentials.h"
#include "aws/ec2_client.h"
#include "app/config.h"
#include "core/clock.h"
#include "core/logger.h"
#include "exec/builtin/builtin_executor.h"
#include "exec/docker/docker_client.h"
#include "exec/docker/docker_executor.h"
#include "exec/ec2/ec2_spot_executor.h"
#include "sched/engine.h"
#include "notify/http_notifier.h"
#include "sched/executor_registry.h"
#include "sched/schedule_runner.h"
#include "sched/schedule_service.h"
#include "sched/task_service.h"
#include "sched/webhook_dispatcher.h"
#include "store/postgres/postgres_store.h"
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

// A fresh 256-bit key, hex-encoded.
std::string RandomSecret() {
  std::random_device rd;  // getrandom(2) on Linux
  static const char* kHex = "0123456789abcdef";
  std::string secret;
  for (int i = 0; i < 64; ++i) secret.push_back(kHex[rd() % 16]);
  return secret;
}

// `url` fit for a log: a password in it ("user:secret@" or "password=...")
// is replaced by "***".
std::string RedactDbUrl(std::string url) {
  size_t scheme = url.find("://");
  size_t at = url.find('@');
  if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
    size_t colon = url.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) url.replace(colon + 1, at - colon - 1, "***");
  }
  for (size_t p = url.find("password="); p != std::string::npos; p = url.find("password=", p + 1)) {
    size_t end = url.find_first_of("& ", p);
    url.replace(p + 9, (end == std::string::npos ? url.size() : end) - p - 9, "***");
  }
  return url;
}

// Opens the store --db names. SQLite's folder is created if missing.
core::StatusOr<std::unique_ptr<core::Store>> OpenStore(const ServeConfig& cfg) {
  auto db = ParseDbUrl(cfg.db);
  if (!db.ok()) return db.status();
  if (db->kind == DbKind::kPostgres) {
    store::PostgresOptions po;
    po.dsn = db->dsn;
    po.schema = cfg.db_schema;
    // Every handler thread and the engine's three loops may hold a connection.
    po.pool_size = cfg.db_pool_size > 0 ? cfg.db_pool_size : cfg.handler_threads + 4;
    // Every node looks for new tasks at least once an idle poll, so only a
    // task due sooner than that needs to wake the others.
    po.notify_horizon =
        std::chrono::duration_cast<std::chrono::milliseconds>(sched::kDefaultIdlePoll);
    return store::OpenPostgresStore(po);
  }
  if (db->path != ":memory:") {
    auto dir = std::filesystem::path(db->path).parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  }
  return store::OpenSqliteStore({.path = db->path});
}

// glibc gives memory back to the kernel as soon as the top of a thread's arena
// has 128 KiB free (M_TRIM_THRESHOLD), and each handler thread has an arena of
// its own: a list page (~30 KB of JSON, its DOM and the libpq result) freed at
// the end of every request left ~170 KiB free, so each request ended in an
// madvise(MADV_DONTNEED) and the next one faulted the pages back in, zeroed:
// ~20 page faults and ~20 % of the node's CPU per list request (bench/README.md,
// fifth pass). An arena now keeps up to 4 MiB free, and blocks up to 1 MiB come
// from the arenas, not from mmap (a fixed threshold, where glibc's default one
// moves with what was last freed). What an arena keeps is bounded by what its
// thread once used at a time.
void KeepFreedMemoryForReuse() {
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
}

int Serve(const ServeConfig& cfg) {
  KeepFreedMemoryForReuse();
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

  auto opened = OpenStore(cfg);
  if (!opened.ok()) {
    spdlog::error("opening {}: {}", RedactDbUrl(cfg.db), opened.status().ToString());
    return opened.status().code() == core::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::unique_ptr<core::Store> store = std::move(*opened);

  // The key of the callback tokens: the flag's, or one generated by the first
  // node and kept in the database, so every node (and a restarted one) accepts
  // the callbacks of any other.
  std::string secret = cfg.callback_secret;
  if (secret.empty()) {
    auto s = store->SettingInit("callback_secret", RandomSecret());
    if (!s.ok()) {
      spdlog::error("callback secret: {}", s.status().ToString());
      return 1;
    }
    secret = *s;
  }

  std::string webhook_secret = cfg.webhook_secret;
  if (webhook_secret.empty()) {
    auto s = store->SettingInit("webhook_secret", RandomSecret());
    if (!s.ok()) {
      spdlog::error("webhook secret: {}", s.status().ToString());
      return 1;
    }
    webhook_secret = *s;
  }

  exec::BuiltinExecutor builtin({.time_scale = cfg.time_scale,
                                 .bar_url = cfg.bar_url,
                                 .bar_workers = exec::kDefaultBarWorkers,
                                 .bar_timeout = exec::kDefaultBarTimeout,
                                 .logger = &logger},
                                clock);
  sched::ExecutorRegistry executors;
  executors.Add(&builtin);

  // One id per database: the containers and instances of this installation,
  // whichever node started them.
  auto install = store->SettingInit("installation_id", RandomSecret().substr(0, 16));
  if (!install.ok()) {
    spdlog::error("installation id: {}", install.status().ToString());
    return 1;
  }

  // The docker runner, when an engine answers on --docker-host.
  std::unique_ptr<exec::DockerClient> docker_client;
  std::unique_ptr<exec::DockerExecutor> docker;
  if (!cfg.docker_host.empty()) {
    auto client = exec::DockerClient::Connect({.host = cfg.docker_host});
    if (client.ok()) {
      docker_client = std::move(*client);
      exec::DockerExecutorOptions dopt;
      dopt.installation = *install;
      dopt.network_mode = cfg.docker_network;
      dopt.memory_bytes = cfg.docker_memory_mb * 1024 * 1024;
      dopt.cpus = cfg.docker_cpus;
      dopt.pull = exec::ParsePullPolicy(cfg.docker_pull).value_or(exec::PullPolicy::kMissing);
      dopt.logger = &logger;
      docker = std::make_unique<exec::DockerExecutor>(dopt, *docker_client);
      executors.Add(docker.get());
    } else {
      spdlog::warn("docker runner off: no Docker engine at {} ({})", cfg.docker_host,
                   client.status().message());
    }
  }

  // The ec2-spot runner, when --ec2-ami is given.
  std::unique_ptr<aws::CredentialsProvider> aws_credentials;
  std::unique_ptr<aws::Ec2Client> ec2_client;
  std::unique_ptr<exec::Ec2SpotExecutor> ec2;
  if (!cfg.ec2_ami.empty()) {
    aws_credentials = std::make_unique<aws::CredentialsProvider>();
    if (auto creds = aws_credentials->Get(); !creds.ok()) {
      spdlog::error("ec2-spot runner: no AWS credentials: {}", creds.status().message());
      return 1;
    }
    spdlog::info("ec2-spot runner: AWS credentials from {}", aws_credentials->source());
    aws::Ec2ClientOptions co;
    co.endpoint = cfg.ec2_endpoint;
    co.region = cfg.ec2_region;
    co.credentials_source = [p = aws_credentials.get()] { return p->Get(); };
    co.now = [&clock] { return clock.Now(); };
    ec2_client = std::make_unique<aws::Ec2Client>(co);
    const double scale = cfg.time_scale;
    auto scaled = [scale](double seconds) {
      return std::chrono::duration_cast<core::Duration>(
          std::chrono::duration<double>(seconds * scale));
    };
    exec::Ec2SpotOptions xo;
    xo.installation = *install;
    xo.image_id = cfg.ec2_ami;
    xo.instance_types = cfg.ec2_instance_types;
    xo.subnets = cfg.ec2_subnets;
    xo.security_groups = cfg.ec2_security_groups;
    xo.instance_profile = cfg.ec2_instance_profile;
    if (!cfg.ec2_max_price.empty()) xo.max_price = cfg.ec2_max_price;
    xo.pull = cfg.docker_pull;
    xo.bootstrap.heartbeat_s = cfg.ec2_heartbeat_s * scale;
    xo.bootstrap.tick_s = 1.0 * scale;
    xo.bootstrap.spot_poll_s = 5.0 * scale;
    xo.bootstrap.stop_margin_s = static_cast<int>(std::lround(10 * scale));
    xo.bootstrap.default_grace_s = static_cast<int>(std::lround(90 * scale));
    xo.bootstrap.give_up_s = static_cast<int>(std::lround(cfg.ec2_give_up_s * scale));
    xo.poll_interval = scaled(cfg.ec2_poll_s);
    xo.missing_grace = scaled(60);
    xo.pool_cooldown = scaled(300);
    xo.logger = &logger;
    if (auto st = exec::Ec2SpotExecutor::Validate(xo); !st.ok()) {
      spdlog::error("{}", st.message());
      return 2;
    }
    ec2 = std::make_unique<exec::Ec2SpotExecutor>(xo, *ec2_client, clock);
    executors.Add(ec2.get());
    spdlog::info("ec2-spot runner: {} at {} ({})", cfg.ec2_ami, ec2_client->endpoint(),
                 cfg.ec2_region);
  }

  // Jobs call back on this URL; known once the server has bound (the port may
  // be 0). The engine reads it only after Start(), which comes later.
  std::string callback_base;

  sched::EngineOptions eo;
  eo.node_id = cfg.node_id.empty() ? DefaultNodeId() : cfg.node_id;
  eo.version = kVersion;
  eo.concurrency = cfg.concurrency;
  eo.claim_batch = cfg.claim_batch;
  eo.claimers = cfg.claimers;
  eo.lease = std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(cfg.lease_s));
  eo.shutdown_grace = std::chrono::duration_cast<core::Duration>(
      std::chrono::duration<double>(cfg.shutdown_grace_s));
  eo.node_retention = std::chrono::duration_cast<core::Duration>(
      std::chrono::duration<double>(cfg.node_retention_s));
  eo.time_scale = cfg.time_scale;
  eo.logger = &logger;
  eo.job_env = [secret, &callback_base](const core::Task& t) {
    return std::map<std::string, std::string>{
        {"SKED_TASK_ID", t.id},
        {"SKED_ATTEMPT", std::to_string(t.attempt)},
        {"SKED_CALLBACK_URL", callback_base + "/v1/tasks/" + t.id + "/callback"},
        {"SKED_CALLBACK_TOKEN", api::CallbackToken(secret, t.id, t.attempt)},
        // 1 when an earlier attempt was interrupted (a spot reclaim, a node
        // shutdown): the job may resume from its checkpoint.
        {"SKED_RESUMED", t.free_attempts > 0 ? "1" : "0"}};
  };
  notify::HttpNotifier notifier({.secret = webhook_secret,
                                 .timeout = notify::kDefaultWebhookTimeout,
                                 .user_agent = std::string("sked/") + kVersion});
  sched::WebhookDispatcherOptions wo;
  wo.node_id = eo.node_id;
  wo.time_scale = cfg.time_scale;
  wo.logger = &logger;
  sched::WebhookDispatcher webhooks(wo, *store, notifier, clock);
  eo.on_webhook_queued = [&webhooks] { webhooks.Wake(); };
  sched::Engine engine(eo, *store, executors, clock);
  sched::TaskService service(*store, &engine, clock);

  sched::ScheduleCalendar calendar;
  sched::ScheduleRunnerOptions ro;
  ro.logger = &logger;
  ro.on_fired = [&engine](const core::ScheduleFireResult& r) {
    for (const auto& t : r.cancelled) engine.AbortLocal(t.id);
    if (!r.inserted.empty()) engine.Wake();
  };
  sched::ScheduleRunner schedule_runner(ro, *store, calendar, clock);
  sched::ScheduleService schedules(*store, calendar, clock,
                                   [&schedule_runner] { schedule_runner.Wake(); });

  api::ApiOptions ao;
  ao.api_tokens = cfg.api_tokens;
  for (const std::string& kind : executors.Kinds()) {
    if (kind != "builtin") ao.create_defaults.container_runners.push_back(kind);
  }
  if (cfg.default_runner != "builtin" && executors.Find(cfg.default_runner) != nullptr) {
    ao.create_defaults.default_container_runner = cfg.default_runner;
  }
  ao.callback_secret = secret;
  ao.version = kVersion;
  ao.node_alive_within = eo.lease * 3;
  // Built before the server starts, so no request can find it missing.
  api::Api api(ao, service, &engine, clock, &schedules);

  api::HttpServerOptions http_options;
  http_options.host = cfg.listen_host;
  http_options.port = cfg.listen_port;
  http_options.io_threads = cfg.io_threads;
  http_options.handler_threads = cfg.handler_threads;
  api::HttpServer server(
      http_options, [&api](const api::HttpRequest& r) { return api.Handle(r); },
      [&api](const api::HttpRequest& r, api::HttpReply reply) {
        return api.HandleAsync(r, std::move(reply));
      });
  if (auto st = server.Start(); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  callback_base = cfg.callback_url;
  if (callback_base.empty())
    callback_base = "http://" + cfg.listen_host + ":" + std::to_string(server.port());
  while (!callback_base.empty() && callback_base.back() == '/') callback_base.pop_back();

  // --concurrency 0: an API-only node. It serves every route and fires
  // schedules and webhooks, but claims no task.
  if (cfg.concurrency > 0) {
    if (auto st = engine.Start(); !st.ok()) {
      spdlog::error("engine: {}", st.message());
      return 1;
    }
  }
  webhooks.Start();
  schedule_runner.Start();
  spdlog::info("sked {} node {} listening on http://{}:{} (db {}){}", kVersion, eo.node_id,
               cfg.listen_host, server.port(), RedactDbUrl(cfg.db),
               cfg.concurrency > 0 ? "" : ", API only: runs no tasks");

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("received {}; stopping: no new claims, up to {}s for running tasks",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.shutdown_grace_s);
  schedule_runner.Stop();
  engine.Stop();
  webhooks.Stop();
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
