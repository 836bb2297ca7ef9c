#include "core/schedule.h"

namespace sked::core {

std::string_view OverlapPolicyName(OverlapPolicy p) {
  switch (p) {
    case OverlapPolicy::kAllow: return "allow";
    case OverlapPolicy::kSkip: return "skip";
    case OverlapPolicy::kCancelPrevious: return "cancel_previous";
  }
  return "allow";
}

std::optional<OverlapPolicy> ParseOverlapPolicy(std::string_view s) {
  for (OverlapPolicy p : {OverlapPolicy::kAllow, OverlapPolicy::kSkip,
                          OverlapPolicy::kCancelPrevious}) {
    if (OverlapPolicyName(p) == s) return p;
  }
  return std::nullopt;
}

std::string_view CatchUpPolicyName(CatchUpPolicy p) {
  switch (p) {
    case CatchUpPolicy::kNone: return "none";
    case CatchUpPolicy::kLatest: return "latest";
    case CatchUpPolicy::kAll: return "all";
  }
  return "latest";
}

std::optional<CatchUpPolicy> ParseCatchUpPolicy(std::string_view s) {
  for (CatchUpPolicy p : {CatchUpPolicy::kNone, CatchUpPolicy::kLatest, CatchUpPolicy::kAll}) {
    if (CatchUpPolicyName(p) == s) return p;
  }
  return std::nullopt;
}

}  // namespace sked::core
