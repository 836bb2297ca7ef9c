#include "exec/builtin/builtin_executor.h"

#include <curl/curl.h>

#include <utility>

namespace sked::exec {

namespace {

using core::ExecResult;

size_t DiscardBody(char*, size_t size, size_t nmemb, void*) { return size * nmemb; }

// GET `url`; returns the status code, or a non-OK status for a transport error.
core::StatusOr<long> HttpGetStatus(const std::string& url, std::chrono::seconds timeout) {
  CURL* curl = curl_easy_init();
  if (!curl) return core::InternalError("curl_easy_init failed");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardBody);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sked/0.1");
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK)
    return core::UnavailableError(std::string("GET ") + url + ": " + curl_easy_strerror(rc));
  return status;
}

}  // namespace

core::Duration BuiltinWait(const std::string& type) {
  using std::chrono::seconds;
  if (type == "fizz" || type == "foo") return seconds(3);
  if (type == "buzz") return seconds(5);
  if (type == "fizzbuzz") return seconds(15);
  return core::Duration::zero();
}

std::string BuiltinOutput(const std::string& type, const std::string& task_id, int baz_draw) {
  if (type == "fizz") return "Fizz " + task_id;
  if (type == "buzz") return "Buzz " + task_id;
  if (type == "fizzbuzz") return "Fizz Buzz " + task_id;
  if (type == "foo") return "Foo " + task_id;
  if (type == "baz") return "Baz " + std::to_string(baz_draw);
  return "";
}

BuiltinExecutor::BuiltinExecutor(BuiltinOptions options, const core::Clock& clock)
    : options_(std::move(options)), clock_(clock), rng_(std::random_device{}()) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  timer_thread_ = std::thread([this] { TimerLoop(); });
  for (int i = 0; i < std::max(1, options_.bar_workers); ++i)
    bar_threads_.emplace_back([this] { BarLoop(); });
}

BuiltinExecutor::~BuiltinExecutor() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  timer_cv_.notify_all();
  bar_cv_.notify_all();
  timer_thread_.join();
  for (auto& t : bar_threads_) t.join();
}

core::Duration BuiltinExecutor::ScaledWait(const std::string& type) const {
  return std::chrono::duration_cast<core::Duration>(BuiltinWait(type) * options_.time_scale);
}

std::optional<ExecResult> BuiltinExecutor::RunInstantly(const core::LaunchParams& params) {
  const core::Task& task = params.task;
  if (!core::IsBuiltinType(task.type) || task.type == "bar" ||
      ScaledWait(task.type) > core::Duration::zero()) {
    return std::nullopt;
  }
  ExecResult result;
  {
    std::lock_guard lk(mu_);
    result = SucceededLocked(task);
  }
  LogOutput(task.id, task.attempt, result);
  return result;
}

ExecResult BuiltinExecutor::SucceededLocked(const core::Task& task) {
  const int draw = std::uniform_int_distribution<int>(0, 343)(rng_);
  return {ExecResult::Kind::kSucceeded, 0, BuiltinOutput(task.type, task.id, draw), ""};
}

core::StatusOr<std::string> BuiltinExecutor::Launch(const core::LaunchParams& params,
                                                    core::DoneCallback done) {
  const core::Task& task = params.task;
  if (!core::IsBuiltinType(task.type))
    return core::InvalidArgumentError("type: " + task.type + " is not a built-in type");
  std::unique_lock lk(mu_);
  std::string handle = "builtin-" + std::to_string(++next_handle_);
  Pending p{std::move(done), {}, task.id, task.attempt};
  if (task.type == "bar") {
    pending_[handle] = std::move(p);
    bar_queue_.push_back(handle);
    bar_cv_.notify_one();
    return handle;
  }
  p.result = SucceededLocked(task);
  const core::Duration wait = ScaledWait(task.type);
  if (wait <= core::Duration::zero()) {
    lk.unlock();
    Finish(std::move(p));
    return handle;
  }
  pending_[handle] = std::move(p);
  timers_.emplace(clock_.Now() + wait, handle);
  timer_cv_.notify_one();
  return handle;
}

core::Status BuiltinExecutor::Adopt(const core::LaunchParams&, const std::string& handle,
                                    core::DoneCallback) {
  return core::NotFoundError("builtin attempt " + handle + " did not survive its process");
}

core::Status BuiltinExecutor::Cancel(const std::string& handle) {
  std::lock_guard lk(mu_);
  pending_.erase(handle);  // a queued timer or bar request then finds nothing
  return core::OkStatus();
}

void BuiltinExecutor::LogOutput(const std::string& task_id, int attempt,
                                const ExecResult& result) const {
  if (result.kind == ExecResult::Kind::kSucceeded && options_.logger)
    options_.logger->Log(core::LogLevel::kInfo, "task " + task_id + " attempt " +
                                                    std::to_string(attempt) +
                                                    " output: " + result.output);
}

void BuiltinExecutor::Finish(Pending p) {
  LogOutput(p.task_id, p.attempt, p.result);
  p.done(std::move(p.result));
}

void BuiltinExecutor::TimerLoop() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    core::Time now = clock_.Now();
    std::vector<Pending> due;
    while (!timers_.empty() && timers_.begin()->first <= now) {
      auto node = timers_.extract(timers_.begin());
      auto it = pending_.find(node.mapped());
      if (it == pending_.end()) continue;  // cancelled
      due.push_back(std::move(it->second));
      pending_.erase(it);
    }
    if (!due.empty()) {
      lk.unlock();
      for (auto& p : due) Finish(std::move(p));
      lk.lock();
      continue;
    }
    core::Time next = timers_.empty() ? now + std::chrono::seconds(1) : timers_.begin()->first;
    // Re-check on every new timer: it may be earlier than `next`.
    size_t size_before = timers_.size();
    clock_.WaitUntil(lk, timer_cv_, next,
                     [&] { return stop_ || timers_.size() != size_before; });
  }
}

void BuiltinExecutor::BarLoop() {
  std::unique_lock lk(mu_);
  while (true) {
    bar_cv_.wait(lk, [&] { return stop_ || !bar_queue_.empty(); });
    if (stop_) return;
    std::string handle = bar_queue_.front();
    bar_queue_.pop_front();
    if (!pending_.count(handle)) continue;  // cancelled while queued
    lk.unlock();
    auto status = HttpGetStatus(options_.bar_url, options_.bar_timeout);
    lk.lock();
    auto it = pending_.find(handle);
    if (it == pending_.end()) continue;  // cancelled while fetching
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (status.ok()) {
      p.result = {ExecResult::Kind::kSucceeded, 0, std::to_string(*status), ""};
    } else {
      p.result = {ExecResult::Kind::kFailed, -1, "", status.status().message()};
    }
    lk.unlock();
    Finish(std::move(p));
    lk.lock();
  }
}

}  // namespace sked::exec
