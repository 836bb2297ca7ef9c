// File: tests/testing/watchdog.cc
//
// Linked into every test binary (sked_test in cmake/sked.cmake). When one test
// runs longer than its limit, prints the test's name and every thread's stack
// (by gdb, when installed) to stderr and aborts: a hang then fails by name and
// place, where a test left to CTest's TIMEOUT is killed with no word of where
// it stood. The limit is SKED_TEST_WATCHDOG_SECONDS (default 120; the slowest
// test takes about 12 s here, and CTest's TIMEOUT is 180 s).
//
// The watchdog is a gtest event listener, registered before main() by this
// file's static initializer; its thread starts with the first test, so listing
// the tests (gtest_discover_tests) starts none.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

int LimitSeconds() {
  const char* v = std::getenv("SKED_TEST_WATCHDOG_SECONDS");
  const int n = v != nullptr ? std::atoi(v) : 0;
  return n > 0 ? n : 120;
}

// What the watchdog's thread reads. Never freed: gtest deletes the listener
// at exit, while the detached thread may still wake once more.
struct Watched {
  std::mutex mu;
  std::string name;
  Clock::time_point started;
  bool running = false;
};

[[noreturn]] void Bark(const std::string& name, std::chrono::seconds limit) {
  std::fprintf(stderr, "\nwatchdog: %s still running after %lld s; every thread's stack:\n",
               name.c_str(), static_cast<long long>(limit.count()));
  std::fflush(stdout);
  std::fflush(stderr);
  const std::string gdb = "gdb -p " + std::to_string(::getpid()) +
                          " -batch -nx -ex 'thread apply all bt' </dev/null 1>&2";
  if (std::system(gdb.c_str()) != 0) {
    std::fprintf(stderr, "watchdog: gdb could not print the stacks (is gdb installed?)\n");
  }
  std::fprintf(stderr, "watchdog: aborting %s\n", name.c_str());
  std::abort();
}

void Watch(Watched* w) {
  const auto limit = std::chrono::seconds(LimitSeconds());
  while (true) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::string name;
    {
      std::lock_guard lk(w->mu);
      if (!w->running || Clock::now() - w->started < limit) continue;
      name = w->name;
    }
    Bark(name, limit);
  }
}

class Watchdog final : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo& info) override {
    {
      std::lock_guard lk(w_->mu);
      w_->name = std::string(info.test_suite_name()) + "." + info.name();
      w_->started = Clock::now();
      w_->running = true;
    }
    std::call_once(start_, [w = w_] { std::thread(Watch, w).detach(); });
  }
  void OnTestEnd(const ::testing::TestInfo&) override {
    std::lock_guard lk(w_->mu);
    w_->running = false;
  }

 private:
  Watched* const w_ = new Watched;
  std::once_flag start_;
};

// gtest owns the listener (and deletes it at exit, after the last test).
[[maybe_unused]] const bool kRegistered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new Watchdog);
  return true;
}();

}  // namespace
