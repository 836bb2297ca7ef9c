// File: store/sqlite/internal/thread_annotations.h
//
// Clang thread-safety annotations (GUARDED_BY and friends) and a mutex that
// carries them, for the SQLite backend, in the manner of leveldb's
// port/thread_annotations.h and port::Mutex. Clang checks them with
// -Wthread-safety; other compilers ignore them.
#pragma once

#include <mutex>

#if defined(__clang__)
#define SKED_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SKED_THREAD_ANNOTATION(x)
#endif

#define SKED_CAPABILITY(x) SKED_THREAD_ANNOTATION(capability(x))
#define SKED_SCOPED_CAPABILITY SKED_THREAD_ANNOTATION(scoped_lockable)
#define SKED_GUARDED_BY(x) SKED_THREAD_ANNOTATION(guarded_by(x))
#define SKED_PT_GUARDED_BY(x) SKED_THREAD_ANNOTATION(pt_guarded_by(x))
#define SKED_ACQUIRE(...) \
  SKED_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define SKED_TRY_ACQUIRE(...) \
  SKED_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define SKED_RELEASE(...) \
  SKED_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define SKED_EXCLUSIVE_LOCKS_REQUIRED(...) \
  SKED_THREAD_ANNOTATION(exclusive_locks_required(__VA_ARGS__))
#define SKED_LOCKS_EXCLUDED(...) \
  SKED_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

namespace sked::store::sqlite_internal {

// std::mutex with annotations, so clang can check what it guards.
//
// Thread safety: a mutex; safe for concurrent use.
class SKED_CAPABILITY("mutex") Mutex {
 public:
  void Lock() SKED_ACQUIRE() { mu_.lock(); }
  void Unlock() SKED_RELEASE() { mu_.unlock(); }
  bool TryLock() SKED_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope.
//
// Thread safety: used by the thread that created it.
class SKED_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) SKED_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() SKED_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

}  // namespace sked::store::sqlite_internal
