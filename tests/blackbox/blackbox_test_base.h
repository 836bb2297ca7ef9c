// File: tests/blackbox/blackbox_test_base.h
//
// The fixture every black-box test derives from: it starts the real `sked`
// binary (ServerProcess), gives an HttpClient bound to it, and offers the few
// task-level helpers the tests share: valid task bodies with overrides, create /
// get / list with the status checked, bounded polling for a state, callback
// tokens, and the shape check for error bodies. All waits poll a condition with a
// deadline; none is a fixed sleep that a test relies on to pass.
//
// Helpers throw std::runtime_error when the server does not do what the helper
// needs (e.g. create is not 201); gtest reports that as the test's failure.
//
// Thread safety: used from the test thread only.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http_client.h"
#include "server_process.h"

namespace sked::blackbox {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SysMs = std::chrono::sys_time<std::chrono::milliseconds>;

// Default bound for "eventually": generous, because CI machines are shared.
inline constexpr milliseconds kEventually = seconds(10);

// ---- Time, ids, tokens ------------------------------------------------------

SysMs NowMs();
// "2026-11-23T19:00:00.123Z".
std::string Rfc3339(SysMs t);
// Parses exactly the API's output form "YYYY-MM-DDTHH:MM:SS.mmmZ"; nullopt otherwise.
std::optional<SysMs> ParseApiTime(std::string_view s);
// The value of `key` in `o` as a time; throws if absent, null or not in the output form.
SysMs TimeField(const json::object& o, std::string_view key);
// Canonical lower-case UUID with version 7 and the RFC 9562 variant.
bool IsUuidV7(std::string_view s);
// Lower-case hex HMAC-SHA256(key = secret, msg = "<id>:<attempt>").
std::string CallbackToken(std::string_view secret, std::string_view id, int64_t attempt);
// Lower-case hex HMAC-SHA256 of `message` under `key` (webhook signatures).
std::string HmacSha256Hex(std::string_view key, std::string_view message);

// ---- JSON access ------------------------------------------------------------

// These throw std::runtime_error naming the key when it is absent or of another type.
std::string Str(const json::object& o, std::string_view key);
int64_t Int(const json::object& o, std::string_view key);
const json::object& Obj(const json::object& o, std::string_view key);
const json::array& Arr(const json::object& o, std::string_view key);
bool IsNull(const json::object& o, std::string_view key);  // present and null
std::string Dump(const json::value& v);

// A valid create body of `type` with `overrides` merged on top.
json::object TaskBody(std::string_view type, json::object overrides = {});

// Polls `cond` every `every` until it is true (returns true) or `timeout` passes
// (returns false).
bool WaitUntil(const std::function<bool()>& cond, milliseconds timeout = kEventually,
               milliseconds every = milliseconds(10));

// ---- The fixture ------------------------------------------------------------

class BlackboxTest : public ::testing::Test {
 protected:
  // Starts `sked serve` with `options` (one server per test) and points api() at it.
  ServerProcess& StartServer(ServerOptions options = {});
  ServerProcess& server() { return *server_; }
  HttpClient& api() { return *api_; }
  // A client with no default Authorization header, for auth tests.
  HttpClient NewClient() const;

  // On failure: prints the server's log tail and keeps its directory. Also fails
  // the test if the server died on its own while the test ran.
  void TearDown() override;

  // POST /v1/tasks; requires 201 and returns the task.
  json::object CreateTask(const json::object& body);
  // POST /v1/tasks:batch; requires 201 and returns the tasks.
  std::vector<json::object> CreateBatch(const json::array& tasks);
  // GET /v1/tasks/{id}; requires 200.
  json::object GetTask(std::string_view id);
  // GET /v1/tasks?<query>; requires 200 and returns the whole answer.
  json::object ListPage(std::string_view query);
  // Follows next_cursor from `query` (which may set limit) until it is null.
  // Throws if a page fails or the walk exceeds `max_pages`.
  std::vector<json::object> ListAll(std::string_view query, int max_pages = 100);
  // GET /v1/tasks/{id}/events; requires 200 and returns the events.
  std::vector<json::object> Events(std::string_view id);

  // Polls GET /v1/tasks/{id} until `pred` holds; returns that task. Throws with the
  // last task seen (and `what`) on timeout.
  json::object WaitForTask(std::string_view id,
                           const std::function<bool(const json::object&)>& pred,
                           std::string_view what, milliseconds timeout = kEventually);
  // WaitForTask for `state`. Stops early (throws) when the task reaches a
  // different terminal state, so a failure is reported at once.
  json::object WaitForState(std::string_view id, std::string_view state,
                            milliseconds timeout = kEventually);

  // POST /v1/tasks/{id}/callback with `body`, authenticated with `token`
  // (nullopt: no Authorization header).
  HttpResponse PostCallback(std::string_view id, const json::object& body,
                            std::optional<std::string> token);
  // The right token for `id` at `attempt` under the server's callback secret.
  std::string TokenFor(std::string_view id, int64_t attempt) const;

  // Checks the error contract: `status`, a JSON body {"error": {"code": code,
  // "message": non-empty string, "details": object}}. When `field` is given,
  // details.field == field and the message starts with "<field>". Returns the
  // "error" object (empty if absent) for further checks.
  json::object ExpectError(const HttpResponse& r, long status, std::string_view code,
                           std::optional<std::string_view> field = std::nullopt);

  // Number of tasks the server lists with no filter (walking every page).
  size_t CountTasks();

 private:
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> api_;
};

}  // namespace sked::blackbox
