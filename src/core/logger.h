// File: core/logger.h
//
// The logging port. Core and sched log through it; app adapts it to spdlog.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <string_view>

namespace sked::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void Log(LogLevel level, std::string_view message) = 0;
};

// Discards everything; the default where no logger is given.
class NullLogger final : public Logger {
 public:
  void Log(LogLevel, std::string_view) override {}
  static Logger& Get() {
    static NullLogger l;
    return l;
  }
};

}  // namespace sked::core
