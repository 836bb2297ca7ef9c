// File: sched/executor_registry.h
//
// Runners by name. `app` builds the registry from the configured executors; the
// engine looks executors up by a task's `runner`, never by concrete class.
//
// Thread safety: filled before the engine starts, read-only afterwards.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/executor.h"

namespace sked::sched {

class ExecutorRegistry {
 public:
  // REQUIRES: no executor of the same Kind() is registered; `e` outlives the registry.
  void Add(core::Executor* e) { by_kind_[std::string(e->Kind())] = e; }

  // nullptr when no executor serves `runner`.
  core::Executor* Find(const std::string& runner) const {
    auto it = by_kind_.find(runner);
    return it == by_kind_.end() ? nullptr : it->second;
  }

  std::vector<std::string> Kinds() const {
    std::vector<std::string> out;
    for (const auto& [k, _] : by_kind_) out.push_back(k);
    return out;
  }

  std::vector<std::string> ProvisioningKinds() const {
    std::vector<std::string> out;
    for (const auto& [k, e] : by_kind_)
      if (e->Provisions()) out.push_back(k);
    return out;
  }

 private:
  std::map<std::string, core::Executor*> by_kind_;
};

}  // namespace sked::sched
