// File: app/config.h
//
// `sked serve` configuration: the flags, their SKED_* environment variables,
// their defaults, and validation once at start-up (bad config fails start-up;
// nothing is silently clamped).
//
// Thread safety: plain values and free functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "sched/engine.h"

namespace CLI {
class App;
}

namespace sked::app {

struct ServeConfig {
  std::string listen = "127.0.0.1:8080";  // --listen, SKED_LISTEN
  std::string listen_host;                // derived from listen
  uint16_t listen_port = 0;               // derived from listen
  std::string db = "sqlite:./data/sked.db";  // --db, SKED_DB
  std::string db_schema = "public";          // --db-schema: PostgreSQL schema of sked's tables
  int db_pool_size = 0;                   // --db-pool-size: PostgreSQL connections; 0 = auto
  std::string node_id;                    // --node-id, SKED_NODE_ID; default hostname-pid
  double time_scale = 1.0;                // --time-scale, SKED_TIME_SCALE
  std::string bar_url = "https://www.whattimeisitrightnow.com/";  // --bar-url
  std::vector<std::string> api_tokens;    // --api-token (repeatable), SKED_API_TOKEN (comma list)
  int concurrency = 64;                   // --concurrency, SKED_CONCURRENCY
  int claim_batch = sched::kDefaultClaimBatch;  // --claim-batch, SKED_CLAIM_BATCH
  int claimers = sched::kDefaultClaimers;       // --claimers, SKED_CLAIMERS
  std::string callback_secret;            // --callback-secret; default generated and kept
  std::string webhook_secret;             // --webhook-secret; default generated and kept
  std::string callback_url;               // --callback-url; default http://<listen>
  double lease_s = 30;                    // --lease-s
  double shutdown_grace_s = 30;           // --shutdown-grace-s
  double node_retention_s = 86400;        // --node-retention-s; 0 keeps every node's row
  int io_threads = 2;                     // --http-io-threads
  int handler_threads = 8;                // --http-handler-threads
  std::string log_level = "info";         // --log-level
  // Container runners.
  std::string default_runner = "docker";  // --default-runner: for container tasks naming none
  std::string docker_host = "unix:///var/run/docker.sock";  // --docker-host; "" disables
  std::string docker_network = "host";    // --docker-network
  int64_t docker_memory_mb = 0;           // --docker-memory-mb; 0 = no limit
  double docker_cpus = 0;                 // --docker-cpus; 0 = no limit
  std::string docker_pull = "missing";    // --docker-pull missing|always|never (also on EC2)
  // The ec2-spot runner: on when --ec2-ami is given.
  std::string ec2_endpoint;               // --ec2-endpoint; default https://ec2.<region>.amazonaws.com/
  std::string ec2_region = "us-east-1";   // --ec2-region
  std::string ec2_ami;                    // --ec2-ami
  std::vector<std::string> ec2_instance_types;  // --ec2-instance-types a,b,c (tried in order)
  std::vector<std::string> ec2_subnets;         // --ec2-subnets (tried in order per type)
  std::vector<std::string> ec2_security_groups;  // --ec2-security-groups
  std::string ec2_instance_profile;       // --ec2-instance-profile: name or ARN
  std::string ec2_max_price;              // --ec2-max-price USD/hour; "" = on-demand price
  double ec2_heartbeat_s = 30;            // --ec2-heartbeat-s: the instance's heartbeat period
  double ec2_poll_s = 5;                  // --ec2-poll-s: how often instances are described
  double ec2_give_up_s = 600;             // --ec2-give-up-s: self-shutdown if unreachable
};

// Registers every serve flag on `cmd`, bound to `cfg`.
void AddServeFlags(CLI::App& cmd, ServeConfig& cfg);

// Checks ranges and derives listen_host/listen_port. kInvalidArgument naming the
// flag otherwise.
core::Status ValidateServeConfig(ServeConfig& cfg);

enum class DbKind { kSqlite, kPostgres };
struct DbUrl {
  DbKind kind = DbKind::kSqlite;
  std::string path;  // SQLite file (or ":memory:")
  std::string dsn;   // PostgreSQL connection string
};
// "sqlite:PATH", "sqlite://PATH", "postgres://..." or "postgresql://...".
core::StatusOr<DbUrl> ParseDbUrl(const std::string& url);

}  // namespace sked::app
