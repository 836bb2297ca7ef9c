#include "app/config.h"

#include <CLI/CLI.hpp>

#include <cstdlib>

namespace sked::app {

void AddServeFlags(CLI::App& cmd, ServeConfig& c) {
  cmd.add_option("--listen", c.listen, "HOST:PORT to serve HTTP on (PORT 0: any free port)")
      ->envname("SKED_LISTEN")
      ->capture_default_str();
  cmd.add_option("--db", c.db,
                 "Store URL: sqlite:PATH (embedded, one node) or postgres://... (many nodes)")
      ->envname("SKED_DB")
      ->capture_default_str();
  cmd.add_option("--db-schema", c.db_schema,
                 "PostgreSQL schema holding sked's tables (created and migrated at start)")
      ->envname("SKED_DB_SCHEMA")
      ->capture_default_str();
  cmd.add_option("--db-pool-size", c.db_pool_size,
                 "PostgreSQL connections this node keeps (0: HTTP handler threads + 4)")
      ->envname("SKED_DB_POOL_SIZE")
      ->capture_default_str();
  cmd.add_option("--node-id", c.node_id, "This node's name in leases and events (default: hostname-pid)")
      ->envname("SKED_NODE_ID");
  cmd.add_option("--time-scale", c.time_scale,
                 "Multiplies built-in waits and retry backoff (tests use 0.01)")
      ->envname("SKED_TIME_SCALE")
      ->capture_default_str();
  cmd.add_option("--bar-url", c.bar_url, "URL the built-in `bar` task fetches")
      ->envname("SKED_BAR_URL")
      ->capture_default_str();
  cmd.add_option("--api-token", c.api_tokens,
                 "Bearer token accepted by the API; repeatable (none: the API is open)")
      ->envname("SKED_API_TOKEN")
      ->delimiter(',');
  cmd.add_option("--concurrency", c.concurrency,
                 "Tasks this node runs at once (0: an API-only node that runs no tasks)")
      ->envname("SKED_CONCURRENCY")
      ->capture_default_str();
  cmd.add_option("--claim-batch", c.claim_batch, "Tasks one claim takes from the store at most")
      ->envname("SKED_CLAIM_BATCH")
      ->capture_default_str();
  cmd.add_option("--claimers", c.claimers,
                 "Claims in flight at once while due tasks pile up, shared by the nodes that claim "
                 "from the store (each keeps claimers / nodes, at least 1)")
      ->envname("SKED_CLAIMERS")
      ->capture_default_str();
  cmd.add_option("--callback-secret", c.callback_secret,
                 "Key of the per-attempt callback tokens (default: generated once, kept beside "
                 "the database)")
      ->envname("SKED_CALLBACK_SECRET");
  cmd.add_option("--webhook-secret", c.webhook_secret,
                 "Key of the X-Sked-Signature HMAC on webhooks (default: generated once, kept in "
                 "the database)")
      ->envname("SKED_WEBHOOK_SECRET");
  cmd.add_option("--callback-url", c.callback_url,
                 "Base URL by which jobs reach this API (default: http://<listen>)")
      ->envname("SKED_CALLBACK_URL");
  cmd.add_option("--lease-s", c.lease_s,
                 "Seconds a claim holds without renewal; a dead node's tasks run again after it")
      ->envname("SKED_LEASE_S")
      ->capture_default_str();
  cmd.add_option("--shutdown-grace-s", c.shutdown_grace_s,
                 "On SIGTERM, seconds running tasks may finish before their leases are given back")
      ->envname("SKED_SHUTDOWN_GRACE_S")
      ->capture_default_str();
  cmd.add_option("--node-retention-s", c.node_retention_s,
                 "Seconds after its last heartbeat that a node is removed from /v1/nodes "
                 "(0: never; else at least 3 leases, while it is listed alive)")
      ->envname("SKED_NODE_RETENTION_S")
      ->capture_default_str();
  cmd.add_option("--http-io-threads", c.io_threads, "Threads doing HTTP I/O")
      ->envname("SKED_HTTP_IO_THREADS")
      ->capture_default_str();
  cmd.add_option("--http-handler-threads", c.handler_threads,
                 "Threads running API handlers (they block on the store)")
      ->envname("SKED_HTTP_HANDLER_THREADS")
      ->capture_default_str();
  cmd.add_option("--default-runner", c.default_runner,
                 "Runner of container tasks that name none: docker or ec2-spot")
      ->envname("SKED_DEFAULT_RUNNER")
      ->check(CLI::IsMember({"builtin", "docker", "ec2-spot"}))
      ->capture_default_str();
  cmd.add_option("--docker-host", c.docker_host,
                 "Docker engine socket, unix:///PATH (\"\": no docker runner on this node)")
      ->envname("SKED_DOCKER_HOST")
      ->capture_default_str();
  cmd.add_option("--docker-network", c.docker_network,
                 "Network mode of task containers (host: jobs reach the API on loopback)")
      ->envname("SKED_DOCKER_NETWORK")
      ->capture_default_str();
  cmd.add_option("--docker-memory-mb", c.docker_memory_mb,
                 "Memory limit of each task container in MiB (0: none)")
      ->envname("SKED_DOCKER_MEMORY_MB")
      ->capture_default_str();
  cmd.add_option("--docker-cpus", c.docker_cpus, "CPU limit of each task container (0: none)")
      ->envname("SKED_DOCKER_CPUS")
      ->capture_default_str();
  cmd.add_option("--docker-pull", c.docker_pull,
                 "When to pull a task's image: missing, always or never")
      ->envname("SKED_DOCKER_PULL")
      ->check(CLI::IsMember({"missing", "always", "never"}))
      ->capture_default_str();
  cmd.add_option("--ec2-endpoint", c.ec2_endpoint,
                 "EC2 API URL (default: https://ec2.<region>.amazonaws.com/; the local "
                 "emulator: http://127.0.0.1:PORT/)")
      ->envname("SKED_EC2_ENDPOINT");
  cmd.add_option("--ec2-region", c.ec2_region, "AWS region of the spot instances")
      ->envname("SKED_EC2_REGION")
      ->capture_default_str();
  cmd.add_option("--ec2-ami", c.ec2_ami,
                 "AMI of the spot instances; turns the ec2-spot runner on")
      ->envname("SKED_EC2_AMI");
  cmd.add_option("--ec2-instance-types", c.ec2_instance_types,
                 "Instance types to try in order when one has no spot capacity (a,b,c)")
      ->envname("SKED_EC2_INSTANCE_TYPES")
      ->delimiter(',');
  cmd.add_option("--ec2-subnets", c.ec2_subnets, "Subnets to try in order, per type (a,b)")
      ->envname("SKED_EC2_SUBNETS")
      ->delimiter(',');
  cmd.add_option("--ec2-security-groups", c.ec2_security_groups,
                 "Security group ids of the instances (a,b)")
      ->envname("SKED_EC2_SECURITY_GROUPS")
      ->delimiter(',');
  cmd.add_option("--ec2-instance-profile", c.ec2_instance_profile,
                 "IAM instance profile (name or ARN) of the instances")
      ->envname("SKED_EC2_INSTANCE_PROFILE");
  cmd.add_option("--ec2-max-price", c.ec2_max_price,
                 "Spot price cap in USD per hour (default: the on-demand price)")
      ->envname("SKED_EC2_MAX_PRICE");
  cmd.add_option("--ec2-heartbeat-s", c.ec2_heartbeat_s,
                 "Seconds between an instance's heartbeat callbacks")
      ->envname("SKED_EC2_HEARTBEAT_S")
      ->capture_default_str();
  cmd.add_option("--ec2-poll-s", c.ec2_poll_s,
                 "Seconds between DescribeInstances of the running instances")
      ->envname("SKED_EC2_POLL_S")
      ->capture_default_str();
  cmd.add_option("--ec2-give-up-s", c.ec2_give_up_s,
                 "An instance whose job ended shuts itself down after this many seconds "
                 "without reaching the scheduler")
      ->envname("SKED_EC2_GIVE_UP_S")
      ->capture_default_str();
  cmd.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
      ->envname("SKED_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
}

core::Status ValidateServeConfig(ServeConfig& c) {
  auto colon = c.listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return core::InvalidArgumentError("--listen: want HOST:PORT, got '" + c.listen + "'");
  c.listen_host = c.listen.substr(0, colon);
  if (c.listen_host.size() > 2 && c.listen_host.front() == '[' && c.listen_host.back() == ']')
    c.listen_host = c.listen_host.substr(1, c.listen_host.size() - 2);
  try {
    size_t used = 0;
    int port = std::stoi(c.listen.substr(colon + 1), &used);
    if (used != c.listen.size() - colon - 1 || port < 0 || port > 65535) throw 0;
    c.listen_port = static_cast<uint16_t>(port);
  } catch (...) {
    return core::InvalidArgumentError("--listen: bad port in '" + c.listen + "'");
  }
  if (!(c.time_scale > 0 && c.time_scale <= 1000))
    return core::InvalidArgumentError("--time-scale: must be in (0, 1000]");
  if (c.concurrency < 0 || c.concurrency > 100000)
    return core::InvalidArgumentError("--concurrency: must be in 0..100000");
  if (c.claim_batch < 1 || c.claim_batch > 1000)
    return core::InvalidArgumentError("--claim-batch: must be in 1..1000");
  if (c.claimers < 1 || c.claimers > 16)
    return core::InvalidArgumentError("--claimers: must be in 1..16");
  if (!(c.lease_s >= 0.5 && c.lease_s <= 3600))
    return core::InvalidArgumentError("--lease-s: must be in 0.5..3600");
  if (!(c.shutdown_grace_s >= 0 && c.shutdown_grace_s <= 86400))
    return core::InvalidArgumentError("--shutdown-grace-s: must be in 0..86400");
  if (!(c.node_retention_s == 0 ||
        (c.node_retention_s >= 3 * c.lease_s && c.node_retention_s <= 10 * 365 * 86400.0)))
    return core::InvalidArgumentError(
        "--node-retention-s: must be 0 or from 3 x --lease-s (a node is listed alive that long) "
        "to 10 years");
  if (c.io_threads < 1 || c.io_threads > 64)
    return core::InvalidArgumentError("--http-io-threads: must be in 1..64");
  if (c.handler_threads < 1 || c.handler_threads > 256)
    return core::InvalidArgumentError("--http-handler-threads: must be in 1..256");
  for (const auto& t : c.api_tokens)
    if (t.empty() || t.find_first_of(" \t\r\n") != std::string::npos)
      return core::InvalidArgumentError("--api-token: tokens must be non-empty, without spaces");
  if (!c.webhook_secret.empty() && c.webhook_secret.size() < 16)
    return core::InvalidArgumentError("--webhook-secret: use at least 16 characters");
  if (!c.callback_secret.empty() && c.callback_secret.size() < 16)
    return core::InvalidArgumentError("--callback-secret: use at least 16 characters");
  if (c.docker_memory_mb < 0 || c.docker_memory_mb > (int64_t{1} << 30))
    return core::InvalidArgumentError("--docker-memory-mb: must be >= 0");
  if (!(c.docker_cpus >= 0 && c.docker_cpus <= 1024))
    return core::InvalidArgumentError("--docker-cpus: must be in 0..1024");
  if (!c.docker_host.empty() && c.docker_host.rfind("unix://", 0) != 0)
    return core::InvalidArgumentError("--docker-host: want unix:///PATH, got '" + c.docker_host +
                                      "'");
  if (c.db_pool_size < 0 || c.db_pool_size > 256)
    return core::InvalidArgumentError("--db-pool-size: must be in 0..256");
  if (!c.ec2_ami.empty() && c.ec2_instance_types.empty())
    return core::InvalidArgumentError("--ec2-instance-types: required with --ec2-ami");
  if (c.ec2_ami.empty() && !c.ec2_instance_types.empty())
    return core::InvalidArgumentError("--ec2-ami: required with --ec2-instance-types");
  if (!c.ec2_max_price.empty()) {
    char* end = nullptr;
    double price = std::strtod(c.ec2_max_price.c_str(), &end);
    if (end == c.ec2_max_price.c_str() || *end != '\0' || !(price > 0))
      return core::InvalidArgumentError("--ec2-max-price: want a positive USD amount, got '" +
                                        c.ec2_max_price + "'");
  }
  if (!(c.ec2_heartbeat_s > 0 && c.ec2_heartbeat_s <= 3600))
    return core::InvalidArgumentError("--ec2-heartbeat-s: must be in (0, 3600]");
  if (!(c.ec2_poll_s > 0 && c.ec2_poll_s <= 3600))
    return core::InvalidArgumentError("--ec2-poll-s: must be in (0, 3600]");
  if (!(c.ec2_give_up_s >= 0 && c.ec2_give_up_s <= 86400))
    return core::InvalidArgumentError("--ec2-give-up-s: must be in 0..86400");
  if (!c.ec2_endpoint.empty() && c.ec2_endpoint.rfind("http://", 0) != 0 &&
      c.ec2_endpoint.rfind("https://", 0) != 0)
    return core::InvalidArgumentError("--ec2-endpoint: want an http(s):// URL, got '" +
                                      c.ec2_endpoint + "'");
  auto db = ParseDbUrl(c.db);
  if (!db.ok()) return db.status();
  return core::OkStatus();
}

core::StatusOr<DbUrl> ParseDbUrl(const std::string& url) {
  auto starts = [&](std::string_view p) { return url.rfind(p, 0) == 0; };
  if (starts("postgres://") || starts("postgresql://"))
    return DbUrl{DbKind::kPostgres, "", url};
  for (std::string_view p : {"sqlite://", "sqlite:"}) {
    if (starts(p)) {
      std::string path = url.substr(p.size());
      if (path.empty()) break;
      return DbUrl{DbKind::kSqlite, path, ""};
    }
  }
  return core::InvalidArgumentError("--db: want sqlite:PATH or postgres://..., got '" + url +
                                    "'");
}

}  // namespace sked::app
