// File: store/postgres/internal/batcher.h
//
// Coalesces concurrent calls into one statement ("smart batching", as in
// group commit): the store's point reads (TaskGet) and single inserts
// (TaskInsert). A call that finds fewer than max_in_flight batches running
// starts one at once; otherwise it waits, and when a batch ends the next one
// takes every call waiting by then (up to max_batch). Alone, a call runs by
// itself with no added delay; under load one statement answers many callers,
// so PostgreSQL's cost per statement (a snapshot, the executor's start-up, a
// round trip, a commit, a wake-up on both sides) is shared.
//
// A batch starts only after every call it holds has arrived, and a call
// returns only after its batch ended: a client that wrote a task and then
// reads it sees its write, and an insert has committed when it returns.
//
// Each waiting call sleeps on a condition variable of its own and is woken
// once: by the batch that answers it, or to run the next batch itself. One
// shared condition variable woke every waiter at the end of each batch, and
// std::binary_semaphore spins in sched_yield before it sleeps (15 % of the
// node's CPU under GET load).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/postgres/internal/thread_annotations.h"

namespace sked::store::postgres_internal {

// Thread safety: safe for concurrent use. The batch function runs on the
// calling threads, at most max_in_flight at a time, without the lock held.
template <typename Result, typename Key = std::string>
class Batcher {
 public:
  // Answers keys[i] with element i of its result; returns exactly
  // keys.size() results. Should it throw, every read of the batch throws
  // the same exception.
  using BatchFn = std::function<std::vector<Result>(const std::vector<Key>& keys)>;

  // REQUIRES: max_in_flight >= 1, max_batch >= 1.
  Batcher(BatchFn fn, int max_in_flight, size_t max_batch)
      : fn_(std::move(fn)), max_in_flight_(max_in_flight), max_batch_(max_batch) {}
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  Result Call(const Key& key) SKED_PG_LOCKS_EXCLUDED(mu_) {
    Waiter me{.key = &key};
    MutexLock lock(&mu_);
    waiting_.push_back(&me);
    while (!me.done) {
      std::vector<Waiter*> batch;
      if (!me.assigned.empty()) {
        batch = std::move(me.assigned);  // its slot is already counted
        me.assigned.clear();
      } else if (in_flight_ < max_in_flight_) {
        // Holds the oldest waiting reads, which may not include this one
        // when more than max_batch wait: it then goes round again.
        batch = TakeBatch();
        ++in_flight_;
      } else {
        lock.Wait(me.wake);
        continue;
      }
      lock.Unlock();
      Run(batch);
      lock.Lock();
      --in_flight_;
      ++batches_;
      reads_ += batch.size();
      for (Waiter* w : batch) {
        w->done = true;
        if (w != &me) w->wake.notify_one();
      }
      if (me.done && !waiting_.empty()) {
        // Hand the next batch to its first read, which runs it.
        std::vector<Waiter*> next = TakeBatch();
        ++in_flight_;
        Waiter* runner = next.front();
        runner->assigned = std::move(next);
        runner->wake.notify_one();
      }
    }
    lock.Unlock();
    if (me.error) std::rethrow_exception(me.error);
    return std::move(*me.result);
  }

  // Reads waiting for a batch to take them.
  size_t Waiting() SKED_PG_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return waiting_.size();
  }

  // Batches run and reads answered so far: reads / batches is the mean
  // batch size.
  std::pair<size_t, size_t> BatchesAndReads() SKED_PG_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return {batches_, reads_};
  }

 private:
  struct Waiter {
    const Key* key;
    // Set by whoever ran its batch; read by its own thread once done.
    std::optional<Result> result;
    std::exception_ptr error;
    bool done = false;              // guarded by mu_
    std::vector<Waiter*> assigned;  // guarded by mu_: a batch to run
    std::condition_variable wake;   // with mu_: done, or a batch assigned
  };

  std::vector<Waiter*> TakeBatch() SKED_PG_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t n = std::min(waiting_.size(), max_batch_);
    std::vector<Waiter*> batch(waiting_.begin(), waiting_.begin() + n);
    waiting_.erase(waiting_.begin(), waiting_.begin() + n);
    return batch;
  }

  // Without the lock: the batch's waiters are asleep, or this thread.
  void Run(const std::vector<Waiter*>& batch) {
    std::vector<Key> keys;
    keys.reserve(batch.size());
    for (const Waiter* w : batch) keys.push_back(*w->key);
    try {
      std::vector<Result> results = fn_(keys);
      for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
    } catch (...) {
      for (Waiter* w : batch) w->error = std::current_exception();
    }
  }

  const BatchFn fn_;
  const int max_in_flight_;
  const size_t max_batch_;

  Mutex mu_;
  std::deque<Waiter*> waiting_ SKED_PG_GUARDED_BY(mu_);
  int in_flight_ SKED_PG_GUARDED_BY(mu_) = 0;
  size_t batches_ SKED_PG_GUARDED_BY(mu_) = 0;
  size_t reads_ SKED_PG_GUARDED_BY(mu_) = 0;
};

}  // namespace sked::store::postgres_internal
