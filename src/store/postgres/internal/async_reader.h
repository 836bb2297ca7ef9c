// File: store/postgres/internal/async_reader.h
//
// Reads of single rows that never block their caller: Read(key, done)
// queues the key and returns; one thread of the reader's own sends the queued
// keys, up to `max_batch` in one statement, on each of its `connections`
// (opened on first use), waits for the answers with poll(), and calls each
// `done` with its row. The HTTP server's I/O threads answer GET /v1/tasks/{id}
// this way (PostgresStore::TaskGetAsync): no handler thread wakes, and under
// load one wake-up of this thread answers a whole batch.
//
// A read sees every write that completed before Read was called: its
// statement is sent after that. A statement that fails gives each of its keys
// the error; a connection found lost is replaced, and its batch sent once more
// on the new one (a server restart between reads is invisible, as it is for
// the pool's connections).
//
// Thread safety: Read is safe from any thread. `done` runs on the reader's
// thread (or, when the reader has stopped, on the caller's) and must not
// block. The destructor answers every queued read before it returns.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/task.h"
#include "store/postgres/internal/connection.h"
#include "store/postgres/internal/thread_annotations.h"

namespace sked::store::postgres_internal {

class AsyncReader {
 public:
  using Value = core::StatusOr<core::Task>;
  using Done = std::function<void(Value)>;
  // Opens one of the reader's connections.
  using OpenFn = std::function<core::StatusOr<std::unique_ptr<Connection>>()>;
  // Sends the one statement that reads `keys` (Connection::Send).
  using SendFn = std::function<core::Status(Connection&, const std::vector<std::string>& keys)>;
  // The values for `keys`, in order, from that statement's result or error.
  using FinishFn = std::function<std::vector<Value>(core::StatusOr<Result> result,
                                                    const std::vector<std::string>& keys)>;

  AsyncReader(OpenFn open, SendFn send, FinishFn finish, int connections, size_t max_batch);
  ~AsyncReader();
  AsyncReader(const AsyncReader&) = delete;
  AsyncReader& operator=(const AsyncReader&) = delete;

  void Read(std::string key, Done done);

 private:
  struct Pending {
    std::string key;
    Done done;
  };
  struct Slot {
    std::unique_ptr<Connection> conn;
    std::vector<Pending> batch;  // in flight when not empty
    bool retried = false;        // the batch was sent again on a new connection
  };

  void Loop();
  // Sends the next batch of queue_ on `slot`; false when the queue is empty.
  bool Dispatch(Slot& slot);
  // Sends slot.batch, opening the slot's connection first if it has none.
  core::Status Send(Slot& slot);
  // slot.batch ended with `result`: answers each read, or sends the batch
  // once more when its connection was found lost.
  void Finish(Slot& slot, core::StatusOr<Result> result);
  void Wake();

  const OpenFn open_;
  const SendFn send_;
  const FinishFn finish_;
  const size_t max_batch_;
  std::vector<Slot> slots_;  // the reader thread's alone
  int wake_pipe_[2] = {-1, -1};

  Mutex mu_;
  std::deque<Pending> queue_ SKED_PG_GUARDED_BY(mu_);
  bool stopping_ SKED_PG_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sked::store::postgres_internal
