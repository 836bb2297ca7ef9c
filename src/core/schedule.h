// File: core/schedule.h
//
// A recurring task: a cron expression read in a time zone, and the task each
// occurrence creates. The scheduler turns each due occurrence into an
// ordinary task (schedule_id and occurrence set, run_at = the occurrence), so
// everything a task does (retries, leases, queues, webhooks) applies to it.
//
// Thread safety: plain values.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/task.h"
#include "core/time.h"

namespace sked::core {

// What an occurrence does while an earlier one of the same schedule is still
// live (scheduled, provisioning or running).
enum class OverlapPolicy {
  kAllow,           // run both
  kSkip,            // do not create this occurrence
  kCancelPrevious,  // cancel the earlier ones, then run this one
};

// Which occurrences missed while no node could create them (sked was down)
// are still run once a node can.
enum class CatchUpPolicy {
  kNone,    // none: only an occurrence at most kScheduleMisfireGrace late runs
  kLatest,  // the most recent missed one (the default)
  kAll,     // every one, oldest first
};

std::string_view OverlapPolicyName(OverlapPolicy p);
std::optional<OverlapPolicy> ParseOverlapPolicy(std::string_view s);
std::string_view CatchUpPolicyName(CatchUpPolicy p);
std::optional<CatchUpPolicy> ParseCatchUpPolicy(std::string_view s);

struct Schedule {
  std::string id;
  std::string cron;      // as given, validated
  std::string timezone;  // IANA name, "UTC" by default
  // The task each occurrence creates. Its run_at, id, idempotency_key,
  // schedule_id and occurrence are unused; notify_url, if unset, is the
  // schedule's.
  Task task;
  OverlapPolicy overlap = OverlapPolicy::kAllow;
  CatchUpPolicy catch_up = CatchUpPolicy::kLatest;
  std::optional<std::string> notify_url;
  bool paused = false;
  // The next occurrence not yet created; nullopt while paused (or when the
  // cron never fires again).
  std::optional<Time> next_run_at;
  Time created_at{};
  Time updated_at{};
};

}  // namespace sked::core
