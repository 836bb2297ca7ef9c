// File: store/postgres/internal/thread_annotations.h
//
// Clang thread-safety annotations (GUARDED_BY and friends) and a mutex that
// carries them, for the PostgreSQL backend, in the manner of leveldb's
// port/thread_annotations.h and port::Mutex. Clang checks them with
// -Wthread-safety; other compilers ignore them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define SKED_PG_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SKED_PG_THREAD_ANNOTATION(x)
#endif

#define SKED_PG_CAPABILITY(x) SKED_PG_THREAD_ANNOTATION(capability(x))
#define SKED_PG_SCOPED_CAPABILITY SKED_PG_THREAD_ANNOTATION(scoped_lockable)
#define SKED_PG_GUARDED_BY(x) SKED_PG_THREAD_ANNOTATION(guarded_by(x))
#define SKED_PG_ACQUIRE(...) SKED_PG_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define SKED_PG_RELEASE(...) SKED_PG_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define SKED_PG_EXCLUSIVE_LOCKS_REQUIRED(...) \
  SKED_PG_THREAD_ANNOTATION(exclusive_locks_required(__VA_ARGS__))
#define SKED_PG_LOCKS_EXCLUDED(...) SKED_PG_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

namespace sked::store::postgres_internal {

// std::mutex with annotations, so clang can check what it guards.
//
// Thread safety: a mutex; safe for concurrent use.
class SKED_PG_CAPABILITY("mutex") Mutex {
 public:
  void Lock() SKED_PG_ACQUIRE() { mu_.lock(); }
  void Unlock() SKED_PG_RELEASE() { mu_.unlock(); }

  // For condition variables: the underlying mutex.
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope; Wait*() release it while they block.
//
// Thread safety: used by the thread that created it.
class SKED_PG_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) SKED_PG_ACQUIRE(mu) : lock_(mu->native()) {}
  ~MutexLock() SKED_PG_RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Waits until pred() holds or `deadline` passes; returns pred().
  template <typename Pred>
  bool WaitUntil(std::condition_variable& cv, std::chrono::steady_clock::time_point deadline,
                 Pred pred) {
    return cv.wait_until(lock_, deadline, pred);
  }

  // Waits for a notification (or a spurious wake-up).
  void Wait(std::condition_variable& cv) { cv.wait(lock_); }

  // Lets go of the mutex for a while, and takes it back.
  void Unlock() SKED_PG_RELEASE() { lock_.unlock(); }
  void Lock() SKED_PG_ACQUIRE() { lock_.lock(); }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace sked::store::postgres_internal
