// File: tests/testing/fake_executor.h
//
// An Executor whose attempts end only when the test says so, recording every
// launch and cancel. Kind and durability are chosen by the test.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/executor.h"

namespace sked::testing {

class FakeExecutor final : public core::Executor {
 public:
  explicit FakeExecutor(std::string kind = "builtin", bool durable = false)
      : kind_(std::move(kind)), durable_(durable) {}

  std::string_view Kind() const override { return kind_; }
  bool Durable() const override { return durable_; }
  bool Provisions() const override { return provisions_; }
  bool Shared() const override { return shared_; }

  // As a cloud runner: claims go to provisioning, Launch may block (see
  // HoldLaunches), and every node sees the same external attempts. Call
  // before the engine is made (it reads Provisions() once).
  void SetCloud(bool provisions, bool shared) {
    provisions_ = provisions;
    shared_ = shared;
  }
  // While held, Launch blocks (as a slow cloud API would) until released.
  void HoldLaunches(bool hold) {
    std::lock_guard lk(mu_);
    hold_ = hold;
    cv_.notify_all();
  }
  size_t Waiting() const {
    std::lock_guard lk(mu_);
    return waiting_;
  }
  // A provisioning fake names its "instance" after the handle.
  Placement Placed(const std::string& handle) override {
    if (!provisions_) return {};
    return {handle, "placed on " + handle};
  }

  core::StatusOr<std::string> Launch(const core::LaunchParams& p,
                                     core::DoneCallback done) override {
    std::unique_lock lk(mu_);
    ++waiting_;
    cv_.wait(lk, [&] { return !hold_; });
    --waiting_;
    if (!launch_error_.ok()) return launch_error_;
    std::string handle = "fake-" + p.task.id + "-" + std::to_string(p.task.attempt);
    launches_.push_back(p);
    live_[p.task.id] = {handle, std::move(done)};
    return handle;
  }
  // Adopts an attempt set with SetExternal; kNotFound for any other handle.
  core::Status Adopt(const core::LaunchParams& p, const std::string& handle,
                     core::DoneCallback done) override {
    std::lock_guard lk(mu_);
    for (auto it = external_.begin(); it != external_.end(); ++it) {
      if (it->handle == handle) {
        adopted_.push_back(handle);
        live_[p.task.id] = {handle, std::move(done)};
        return core::OkStatus();
      }
    }
    return core::NotFoundError(handle);
  }
  core::StatusOr<std::vector<core::ExternalAttempt>> ListExternal() override {
    std::lock_guard lk(mu_);
    if (!list_error_.ok()) return list_error_;
    return external_;
  }
  core::Status Cancel(const std::string& handle) override {
    std::lock_guard lk(mu_);
    cancelled_.push_back(handle);
    for (auto it = external_.begin(); it != external_.end(); ++it)
      if (it->handle == handle) {
        external_.erase(it);
        break;
      }
    for (auto it = live_.begin(); it != live_.end(); ++it)
      if (it->second.handle == handle) {
        live_.erase(it);
        break;
      }
    return core::OkStatus();
  }

  // Tasks of `type` run at once (RunInstantly) with result `r`, and are
  // never launched.
  void SetInstant(std::string type, core::ExecResult r) {
    std::lock_guard lk(mu_);
    instant_[std::move(type)] = std::move(r);
  }
  std::optional<core::ExecResult> RunInstantly(const core::LaunchParams& p) override {
    std::lock_guard lk(mu_);
    auto it = instant_.find(p.task.type);
    if (it == instant_.end()) return std::nullopt;
    ran_instantly_.push_back(p);
    return it->second;
  }
  std::vector<core::LaunchParams> RanInstantly() const {
    std::lock_guard lk(mu_);
    return ran_instantly_;
  }

  // Ends the live attempt of `task_id`; false if there is none.
  bool Complete(const std::string& task_id, core::ExecResult r) {
    core::DoneCallback done;
    {
      std::lock_guard lk(mu_);
      auto it = live_.find(task_id);
      if (it == live_.end()) return false;
      done = std::move(it->second.done);
      live_.erase(it);
    }
    done(std::move(r));
    return true;
  }

  // Attempts "outside the process" (as containers left by a dead node).
  void SetExternal(std::vector<core::ExternalAttempt> external) {
    std::lock_guard lk(mu_);
    external_ = std::move(external);
  }
  void SetListError(core::Status s) {
    std::lock_guard lk(mu_);
    list_error_ = std::move(s);
  }
  std::vector<std::string> Adopted() const {
    std::lock_guard lk(mu_);
    return adopted_;
  }
  void SetLaunchError(core::Status s) {
    std::lock_guard lk(mu_);
    launch_error_ = std::move(s);
  }
  std::vector<core::LaunchParams> Launches() const {
    std::lock_guard lk(mu_);
    return launches_;
  }
  size_t LiveCount() const {
    std::lock_guard lk(mu_);
    return live_.size();
  }
  bool IsLive(const std::string& task_id) const {
    std::lock_guard lk(mu_);
    return live_.count(task_id) > 0;
  }
  std::vector<std::string> Cancelled() const {
    std::lock_guard lk(mu_);
    return cancelled_;
  }

 private:
  struct Live {
    std::string handle;
    core::DoneCallback done;
  };
  const std::string kind_;
  const bool durable_;
  bool provisions_ = false;
  bool shared_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  size_t waiting_ = 0;
  core::Status launch_error_;
  std::vector<core::LaunchParams> launches_;
  std::map<std::string, Live> live_;
  std::vector<std::string> cancelled_;
  std::vector<core::ExternalAttempt> external_;
  core::Status list_error_;
  std::vector<std::string> adopted_;
  std::map<std::string, core::ExecResult> instant_;  // by task type
  std::vector<core::LaunchParams> ran_instantly_;
};

}  // namespace sked::testing
