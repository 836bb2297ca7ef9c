// File: exec/ec2/ec2_spot_executor.h
//
// The `ec2-spot` runner: each attempt of a container task runs on a fresh
// one-time EC2 Spot Instance whose user data (exec/ec2/user_data.h) starts the
// container, sends heartbeats, watches for the spot interruption notice and
// reports the outcome to the task's callback route. The outcome therefore
// arrives through the API (TaskService), not through this class; the
// scheduler then stops the attempt with Cancel, which terminates the
// instance.
//
//   Launch     RunInstances with the configured AMI, trying each instance
//              type x subnet in order; a pool that answered "no capacity"
//              (kResourceExhausted) is skipped for `pool_cooldown`. The
//              ClientToken is derived from task id, attempt and pool, so a
//              retried call never starts a second instance. Blocking: the
//              engine calls it on a thread of its own (Provisions()).
//              The handle is the instance id.
//   Watch      one thread describes the watched instances every
//              `poll_interval`. An instance that ended without the job
//              reporting ends its attempt: reclaimed by EC2 (Server.*), or
//              gone from the listing for `missing_grace` -> kInterrupted (a
//              free re-run on a new instance); shut down from inside or
//              terminated by someone else (Client.*) -> kFailed.
//   Adopt      re-attaches to a pending/running instance by id (another
//              node's, whose lease ran out).
//   Cancel     TerminateInstances; an unknown instance is already gone, and
//              one whose spot request shows EC2 reclaiming it is left to EC2,
//              so the job keeps its two-minute warning to checkpoint.
//   List       DescribeInstances by the tags sked:managed / sked:install: the
//              elected node adopts or terminates what it finds (Shared()).
//
// Thread safety: safe for concurrent use.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "aws/ec2_client.h"
#include "core/clock.h"
#include "core/executor.h"
#include "core/logger.h"
#include "exec/ec2/user_data.h"

namespace sked::exec {

// Instance tags (the IAM policy may condition on sked:managed).
inline constexpr char kEc2TagTaskId[] = "sked:task-id";
inline constexpr char kEc2TagAttempt[] = "sked:attempt";
inline constexpr char kEc2TagManaged[] = "sked:managed";
inline constexpr char kEc2TagInstall[] = "sked:install";

struct Ec2SpotOptions {
  // Tags every instance (sked:install) and scopes ListExternal to it.
  std::string installation;
  std::string image_id;                     // the AMI; required
  std::vector<std::string> instance_types;  // tried in order; required
  std::vector<std::string> subnets;         // tried in order per type; empty: EC2's default
  std::vector<std::string> security_groups;
  std::string instance_profile;  // name or ARN; empty: none
  std::optional<std::string> max_price;
  std::string pull = "missing";  // the image pull policy on the instance
  BootstrapTiming bootstrap;
  // How often the watched instances are described.
  core::Duration poll_interval = std::chrono::seconds(5);
  // An instance missing from DescribeInstances this long after launch is
  // gone (EC2 lists a new instance within seconds; a terminated one for an
  // hour).
  core::Duration missing_grace = std::chrono::seconds(60);
  // A pool (type, subnet) that had no capacity is not tried for this long.
  core::Duration pool_cooldown = std::chrono::minutes(5);
  core::Logger* logger = nullptr;
};

// The ClientToken of one launch: "sked-<task>-<attempt>-<pool>", or a digest
// of it when that exceeds EC2's 64 characters.
std::string Ec2ClientToken(const std::string& task_id, int attempt, int pool);

class Ec2SpotExecutor final : public core::Executor {
 public:
  // `client` and `clock` must outlive the executor. kInvalidArgument (from
  // Validate) when the options cannot launch anything.
  Ec2SpotExecutor(Ec2SpotOptions options, aws::Ec2Client& client, const core::Clock& clock);
  ~Ec2SpotExecutor() override;  // stops watching; the instances keep running

  // kInvalidArgument naming the missing option.
  static core::Status Validate(const Ec2SpotOptions& options);

  std::string_view Kind() const override { return "ec2-spot"; }
  bool Provisions() const override { return true; }
  bool Shared() const override { return true; }
  core::StatusOr<std::string> Launch(const core::LaunchParams& params,
                                     core::DoneCallback done) override;
  Placement Placed(const std::string& handle) override;
  core::Status Adopt(const core::LaunchParams& params, const std::string& handle,
                     core::DoneCallback done) override;
  core::Status Cancel(const std::string& handle) override;
  core::StatusOr<std::vector<core::ExternalAttempt>> ListExternal() override;
  // ec2_instances_launched_total, ec2_pools_without_capacity_total,
  // ec2_launch_failures_total, ec2_instances_terminated_total,
  // ec2_instances_left_to_reclaim_total, ec2_instances_lost_total,
  // ec2_instances_adopted_total, and the gauge ec2_instances_watched.
  std::vector<core::RunnerCounter> Counters() const override;

 private:
  struct Watched {
    std::string task_id;
    int attempt = 0;
    core::DoneCallback done;
    core::Time since{};  // launched or adopted
  };

  // RunInstances over the pools; the instance and what the history says.
  core::StatusOr<aws::Ec2Instance> LaunchInPools(const core::LaunchParams& params,
                                                 const std::string& user_data,
                                                 std::string* note);
  void WatchLoop();
  // One pass: describes the watched instances and ends the attempts of those
  // that are gone.
  void Poll();
  void Log(core::LogLevel level, const std::string& message);

  const Ec2SpotOptions options_;
  aws::Ec2Client& client_;
  const core::Clock& clock_;

  struct Counts {
    int64_t launched = 0;
    int64_t no_capacity = 0;
    int64_t launch_failures = 0;
    int64_t terminated = 0;
    int64_t left_to_reclaim = 0;
    int64_t lost = 0;
    int64_t adopted = 0;
  };

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Counts counts_;  // guarded by mu_
  std::map<std::string, Watched> watched_;       // by instance id; guarded by mu_
  std::map<std::string, std::string> notes_;     // Placed() text by instance id
  std::map<std::string, core::Time> cooling_;    // pool -> usable again at
  bool closing_ = false;
  std::thread watcher_;
};

}  // namespace sked::exec
