#include "core/ids.h"

#include <cstdio>

namespace sked::core {

std::string NewUuidV7(Time now, uint64_t rand_hi, uint64_t rand_lo) {
  uint64_t ms = static_cast<uint64_t>(ToMicros(now) / 1000);
  uint64_t hi = (ms << 16) | (0x7ULL << 12) | (rand_hi & 0x0FFF);
  uint64_t lo = (0x2ULL << 62) | (rand_lo & 0x3FFFFFFFFFFFFFFFULL);
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xFFFF),
                static_cast<unsigned>(hi & 0xFFFF), static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace sked::core
