#include "exec/ec2/ec2_spot_executor.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "aws/sigv4.h"

namespace sked::exec {

namespace {

using core::ExecResult;

constexpr size_t kFilterValuesPerCall = 100;  // EC2 takes up to 200 values per filter

bool Ended(const aws::Ec2Instance& i) {
  return i.state_name == "shutting-down" || i.state_name == "terminated" ||
         i.state_name == "stopping" || i.state_name == "stopped";
}

std::string Reason(const aws::Ec2Instance& i) {
  if (i.state_reason_message.empty()) return i.state_reason_code.empty() ? i.state_name : i.state_reason_code;
  return i.state_reason_message;
}

// How an attempt ends when its instance ended before the job reported.
ExecResult EndedWithoutReport(const aws::Ec2Instance& i) {
  const std::string& code = i.state_reason_code;
  if (code == "Server.SpotInstanceTermination" || code == "Server.SpotInstanceShutdown") {
    return {ExecResult::Kind::kInterrupted, -1, "",
            "spot instance " + i.instance_id + " was reclaimed by EC2 (" + Reason(i) + ")"};
  }
  if (code.rfind("Server.", 0) == 0) {
    return {ExecResult::Kind::kInterrupted, -1, "",
            "instance " + i.instance_id + " ended without notice (" + Reason(i) + ")"};
  }
  return {ExecResult::Kind::kFailed, -1, "",
          "instance " + i.instance_id + " ended before the job reported (" + Reason(i) + ")"};
}

std::string PoolName(const std::string& type, const std::string& subnet) {
  return subnet.empty() ? type : type + " in " + subnet;
}

}  // namespace

std::string Ec2ClientToken(const std::string& task_id, int attempt, int pool) {
  std::string token = "sked-" + task_id + "-" + std::to_string(attempt) + "-" + std::to_string(pool);
  if (token.size() <= aws::kMaxClientTokenLength) return token;
  return "sked-" + aws::HexSha256(token).substr(0, 48);
}

Ec2SpotExecutor::Ec2SpotExecutor(Ec2SpotOptions options, aws::Ec2Client& client,
                                 const core::Clock& clock)
    : options_(std::move(options)), client_(client), clock_(clock) {
  watcher_ = std::thread([this] { WatchLoop(); });
}

Ec2SpotExecutor::~Ec2SpotExecutor() {
  {
    std::lock_guard lk(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

core::Status Ec2SpotExecutor::Validate(const Ec2SpotOptions& o) {
  if (o.image_id.empty()) return core::InvalidArgumentError("--ec2-ami: required for the ec2-spot runner");
  if (o.instance_types.empty())
    return core::InvalidArgumentError("--ec2-instance-types: at least one type is required");
  if (o.pull != "missing" && o.pull != "always" && o.pull != "never")
    return core::InvalidArgumentError("pull policy: must be missing, always or never");
  return core::OkStatus();
}

void Ec2SpotExecutor::Log(core::LogLevel level, const std::string& message) {
  if (options_.logger) options_.logger->Log(level, message);
}

core::StatusOr<std::string> Ec2SpotExecutor::Launch(const core::LaunchParams& params,
                                                    core::DoneCallback done) {
  const core::Task& t = params.task;
  UserDataParams u;
  u.task_id = t.id;
  u.attempt = t.attempt;
  u.image = t.image;
  u.command = t.command;
  u.env = t.env;
  for (const auto& [k, v] : params.job_env) u.env[k] = v;
  if (auto it = params.job_env.find("SKED_CALLBACK_URL"); it != params.job_env.end())
    u.callback_url = it->second;
  if (auto it = params.job_env.find("SKED_CALLBACK_TOKEN"); it != params.job_env.end())
    u.callback_token = it->second;
  u.pull = options_.pull;
  u.timing = options_.bootstrap;
  ASSIGN_OR_RETURN(std::string user_data, RenderUserData(u));

  std::string note;
  auto launched = LaunchInPools(params, user_data, &note);
  if (!launched.ok()) {
    std::lock_guard lk(mu_);
    ++counts_.launch_failures;
    return launched.status();
  }
  const std::string id = launched->instance_id;
  Log(core::LogLevel::kInfo, "task " + t.id + " attempt " + std::to_string(t.attempt) + ": " + note);
  std::lock_guard lk(mu_);
  ++counts_.launched;
  watched_[id] = Watched{t.id, t.attempt, std::move(done), clock_.Now()};
  notes_[id] = std::move(note);
  cv_.notify_all();
  return id;
}

core::StatusOr<aws::Ec2Instance> Ec2SpotExecutor::LaunchInPools(const core::LaunchParams& params,
                                                               const std::string& user_data,
                                                               std::string* note) {
  const core::Task& t = params.task;
  struct Pool {
    std::string type, subnet;
    int index;
  };
  std::vector<Pool> pools;
  const std::vector<std::string> subnets =
      options_.subnets.empty() ? std::vector<std::string>{""} : options_.subnets;
  for (const std::string& type : options_.instance_types)
    for (const std::string& subnet : subnets)
      pools.push_back({type, subnet, static_cast<int>(pools.size())});

  // Pools that recently had no capacity go last, not away: when every pool
  // is cooling down, trying them beats failing without asking.
  const core::Time now = clock_.Now();
  {
    std::lock_guard lk(mu_);
    std::stable_partition(pools.begin(), pools.end(), [&](const Pool& p) {
      auto it = cooling_.find(PoolName(p.type, p.subnet));
      return it == cooling_.end() || it->second <= now;
    });
  }

  std::vector<std::string> no_capacity;
  for (const Pool& pool : pools) {
    aws::RunSpotParams rp;
    rp.image_id = options_.image_id;
    rp.instance_type = pool.type;
    rp.subnet_id = pool.subnet;
    rp.security_group_ids = options_.security_groups;
    rp.instance_profile_name = options_.instance_profile;
    rp.user_data = user_data;
    rp.client_token = Ec2ClientToken(t.id, t.attempt, pool.index);
    rp.tags = {{kEc2TagTaskId, t.id},
               {kEc2TagAttempt, std::to_string(t.attempt)},
               {kEc2TagManaged, "true"},
               {kEc2TagInstall, options_.installation},
               {"Name", "sked-" + t.id + "-" + std::to_string(t.attempt)}};
    rp.max_price = options_.max_price;
    auto run = client_.RunSpotInstance(rp);
    const std::string name = PoolName(pool.type, pool.subnet);
    if (run.ok()) {
      *note = "spot instance " + run->instance_id + " (" + name + ")";
      if (!no_capacity.empty()) {
        *note += "; no capacity in";
        for (size_t i = 0; i < no_capacity.size(); ++i) *note += (i ? ", " : " ") + no_capacity[i];
      }
      return run;
    }
    const core::Status& st = run.status();
    if (st.code() != core::StatusCode::kResourceExhausted) {
      if (st.code() == core::StatusCode::kFailedPrecondition) {
        // An account quota: not this task's fault; retried after backoff.
        return core::UnavailableError("ec2-spot: " + st.message());
      }
      return st;
    }
    auto err = aws::Ec2ErrorOf(st);
    no_capacity.push_back(name + " (" + (err ? err->code : st.message()) + ")");
    Log(core::LogLevel::kWarn, "task " + t.id + ": no spot capacity for " + name + ": " +
                                   st.message() + "; trying the next pool");
    std::lock_guard lk(mu_);
    ++counts_.no_capacity;
    cooling_[name] = clock_.Now() + options_.pool_cooldown;
  }
  std::string all;
  for (size_t i = 0; i < no_capacity.size(); ++i) all += (i ? ", " : "") + no_capacity[i];
  return core::ResourceExhaustedError("ec2-spot: no spot capacity in any pool: " + all);
}

core::Executor::Placement Ec2SpotExecutor::Placed(const std::string& handle) {
  std::lock_guard lk(mu_);
  Placement p;
  p.instance_id = handle;
  if (auto it = notes_.find(handle); it != notes_.end()) {
    p.message = "launched " + it->second;
    notes_.erase(it);
  }
  return p;
}

core::Status Ec2SpotExecutor::Adopt(const core::LaunchParams& params, const std::string& handle,
                                    core::DoneCallback done) {
  ASSIGN_OR_RETURN(std::vector<aws::Ec2Instance> found,
                   client_.DescribeInstances({}, {{"instance-id", {handle}}}));
  if (found.empty() || Ended(found.front()))
    return core::NotFoundError("ec2-spot: instance " + handle + " no longer runs");
  std::lock_guard lk(mu_);
  ++counts_.adopted;
  watched_[handle] = Watched{params.task.id, params.task.attempt, std::move(done), clock_.Now()};
  cv_.notify_all();
  return core::OkStatus();
}

core::Status Ec2SpotExecutor::Cancel(const std::string& handle) {
  {
    std::lock_guard lk(mu_);
    watched_.erase(handle);
    notes_.erase(handle);
  }
  if (handle.rfind("i-", 0) != 0) return core::OkStatus();  // never launched
  // An instance EC2 is reclaiming keeps its two-minute warning: the job got
  // SIGTERM from the bootstrap and may be checkpointing. EC2 ends it.
  auto requests = client_.DescribeSpotInstanceRequests({{"instance-id", {handle}}});
  if (requests.ok()) {
    for (const aws::SpotRequest& r : *requests) {
      if (r.instance_id == handle && aws::IsSpotReclaim(r.status_code)) {
        Log(core::LogLevel::kInfo, "instance " + handle + " is being reclaimed by EC2 (" +
                                       r.status_code + "); left to finish its warning");
        std::lock_guard lk(mu_);
        ++counts_.left_to_reclaim;
        return core::OkStatus();
      }
    }
  }
  core::Status st = client_.TerminateInstances({handle});
  if (st.code() == core::StatusCode::kNotFound) return core::OkStatus();
  if (st.ok()) {
    Log(core::LogLevel::kInfo, "terminated instance " + handle);
    std::lock_guard lk(mu_);
    ++counts_.terminated;
  }
  return st;
}

core::StatusOr<std::vector<core::ExternalAttempt>> Ec2SpotExecutor::ListExternal() {
  ASSIGN_OR_RETURN(std::vector<aws::Ec2Instance> found,
                   client_.DescribeInstances(
                       {}, {{std::string("tag:") + kEc2TagManaged, {"true"}},
                            {std::string("tag:") + kEc2TagInstall, {options_.installation}},
                            {"instance-state-name", {"pending", "running"}}}));
  std::vector<core::ExternalAttempt> out;
  for (const aws::Ec2Instance& i : found) {
    std::string task_id, attempt;
    for (const aws::Tag& tag : i.tags) {
      if (tag.key == kEc2TagTaskId) task_id = tag.value;
      if (tag.key == kEc2TagAttempt) attempt = tag.value;
    }
    int n = 0;
    auto [p, ec] = std::from_chars(attempt.data(), attempt.data() + attempt.size(), n);
    if (task_id.empty() || ec != std::errc() || p != attempt.data() + attempt.size()) continue;
    out.push_back({task_id, n, i.instance_id});
  }
  return out;
}

std::vector<core::RunnerCounter> Ec2SpotExecutor::Counters() const {
  std::lock_guard lk(mu_);
  const Counts& c = counts_;
  return {
      {"ec2_instances_launched_total", "Spot instances launched by this node.", c.launched},
      {"ec2_pools_without_capacity_total",
       "Launches refused for capacity in one pool (instance type, subnet).", c.no_capacity},
      {"ec2_launch_failures_total", "Attempts whose launch failed in every pool or for good.",
       c.launch_failures},
      {"ec2_instances_terminated_total", "Instances this node terminated.", c.terminated},
      {"ec2_instances_left_to_reclaim_total",
       "Instances left to EC2's reclaim so their job could checkpoint.", c.left_to_reclaim},
      {"ec2_instances_lost_total", "Instances that ended before their job reported.", c.lost},
      {"ec2_instances_adopted_total", "Instances of other (or earlier) nodes adopted.",
       c.adopted},
      {"ec2_instances_watched", "Instances this node watches now.",
       static_cast<int64_t>(watched_.size()), /*gauge=*/true},
  };
}

void Ec2SpotExecutor::WatchLoop() {
  std::unique_lock lk(mu_);
  while (!closing_) {
    clock_.WaitUntil(lk, cv_, clock_.Now() + options_.poll_interval, [&] { return closing_; });
    if (closing_) break;
    lk.unlock();
    Poll();
    lk.lock();
  }
}

void Ec2SpotExecutor::Poll() {
  std::vector<std::string> ids;
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, w] : watched_) ids.push_back(id);
  }
  if (ids.empty()) return;
  std::map<std::string, aws::Ec2Instance> found;
  for (size_t from = 0; from < ids.size(); from += kFilterValuesPerCall) {
    std::vector<std::string> chunk(ids.begin() + from,
                                   ids.begin() + std::min(ids.size(), from + kFilterValuesPerCall));
    auto listed = client_.DescribeInstances({}, {{"instance-id", chunk}});
    if (!listed.ok()) {
      Log(core::LogLevel::kWarn, "ec2-spot: describe instances: " + listed.status().ToString());
      return;  // unsure: decide nothing this round
    }
    for (auto& i : *listed) found[i.instance_id] = std::move(i);
  }
  const core::Time now = clock_.Now();
  std::vector<std::pair<core::DoneCallback, ExecResult>> ended;
  {
    std::lock_guard lk(mu_);
    for (const std::string& id : ids) {
      auto w = watched_.find(id);
      if (w == watched_.end()) continue;  // cancelled meanwhile
      auto f = found.find(id);
      ExecResult result;
      if (f != found.end()) {
        if (!Ended(f->second)) continue;
        result = EndedWithoutReport(f->second);
      } else if (now - w->second.since >= options_.missing_grace) {
        result = {ExecResult::Kind::kInterrupted, -1, "",
                  "instance " + id + " vanished: EC2 no longer lists it"};
      } else {
        continue;  // a new instance EC2 does not list yet
      }
      Log(core::LogLevel::kWarn, "task " + w->second.task_id + " attempt " +
                                     std::to_string(w->second.attempt) + ": " + result.error);
      ended.emplace_back(std::move(w->second.done), std::move(result));
      watched_.erase(w);
      ++counts_.lost;
    }
  }
  for (auto& [done, result] : ended)
    if (done) done(std::move(result));
}

}  // namespace sked::exec
