// File: core/notifier.h
//
// The webhook contract: deliver one task to a URL and say whether the
// receiver took it. The scheduler decides when to try and how often
// (sched/webhook_dispatcher.h); an implementation only makes the request.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <string>

#include "core/status.h"
#include "core/task.h"

namespace sked::core {

class Notifier {
 public:
  virtual ~Notifier() = default;

  // POSTs `task` to `url`. OK when the receiver answered 2xx; otherwise an
  // error whose message says why ("HTTP 503", "connection refused"), which
  // the task's history keeps. Returns within the implementation's timeout.
  virtual Status Notify(const std::string& url, const Task& task) = 0;
};

}  // namespace sked::core
