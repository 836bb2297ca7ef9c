#include "blackbox_test_base.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <regex>
#include <set>
#include <stdexcept>

namespace sked::blackbox {

// ---- Time, ids, tokens ------------------------------------------------------

SysMs NowMs() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

std::string Rfc3339(SysMs t) {
  auto days = std::chrono::floor<std::chrono::days>(t);
  std::chrono::year_month_day ymd(days);
  std::chrono::hh_mm_ss<std::chrono::milliseconds> hms(t - days);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

std::optional<SysMs> ParseApiTime(std::string_view s) {
  static const std::regex kForm(R"(^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$)");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(s.begin(), s.end(), m, kForm)) return std::nullopt;
  auto num = [&](int i) { return std::stoi(m[i].str()); };
  std::chrono::year_month_day ymd{std::chrono::year(num(1)),
                                  std::chrono::month(static_cast<unsigned>(num(2))),
                                  std::chrono::day(static_cast<unsigned>(num(3)))};
  if (!ymd.ok() || num(4) > 23 || num(5) > 59 || num(6) > 59) return std::nullopt;
  return SysMs(std::chrono::sys_days(ymd)) + std::chrono::hours(num(4)) +
         std::chrono::minutes(num(5)) + std::chrono::seconds(num(6)) +
         std::chrono::milliseconds(num(7));
}

SysMs TimeField(const json::object& o, std::string_view key) {
  std::string s = Str(o, key);
  auto t = ParseApiTime(s);
  if (!t) throw std::runtime_error("field " + std::string(key) + " is not an API time: " + s);
  return *t;
}

bool IsUuidV7(std::string_view s) {
  static const std::regex kUuid7(
      "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(s.begin(), s.end(), kUuid7);
}

std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 15]);
  }
  return hex;
}

std::string CallbackToken(std::string_view secret, std::string_view id, int64_t attempt) {
  return HmacSha256Hex(secret, std::string(id) + ":" + std::to_string(attempt));
}

// ---- JSON access ------------------------------------------------------------

namespace {

const json::value& Field(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) {
    throw std::runtime_error("missing field \"" + std::string(key) + "\" in " + Dump(o));
  }
  return it->value();
}

[[noreturn]] void WrongType(const json::object& o, std::string_view key, std::string_view want) {
  throw std::runtime_error("field \"" + std::string(key) + "\" is not " + std::string(want) +
                           " in " + Dump(o));
}

}  // namespace

std::string Str(const json::object& o, std::string_view key) {
  const json::value& v = Field(o, key);
  if (!v.is_string()) WrongType(o, key, "a string");
  return std::string(v.as_string());
}

int64_t Int(const json::object& o, std::string_view key) {
  const json::value& v = Field(o, key);
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) return static_cast<int64_t>(v.as_uint64());
  WrongType(o, key, "an integer");
}

const json::object& Obj(const json::object& o, std::string_view key) {
  const json::value& v = Field(o, key);
  if (!v.is_object()) WrongType(o, key, "an object");
  return v.as_object();
}

const json::array& Arr(const json::object& o, std::string_view key) {
  const json::value& v = Field(o, key);
  if (!v.is_array()) WrongType(o, key, "an array");
  return v.as_array();
}

bool IsNull(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_null();
}

std::string Dump(const json::value& v) {
  std::string s = json::serialize(v);
  return s.size() > 3000 ? s.substr(0, 3000) + "...(truncated)" : s;
}

json::object TaskBody(std::string_view type, json::object overrides) {
  json::object body;
  body["type"] = type;
  for (auto& kv : overrides) body[kv.key()] = kv.value();
  return body;
}

bool WaitUntil(const std::function<bool()>& cond, milliseconds timeout, milliseconds every) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

// ---- The fixture ------------------------------------------------------------

ServerProcess& BlackboxTest::StartServer(ServerOptions options) {
  server_ = std::make_unique<ServerProcess>(std::move(options));
  ServerProcess* s = server_.get();
  api_ = std::make_unique<HttpClient>([s] { return s->base_url(); });
  server_->Start();
  return *server_;
}

HttpClient BlackboxTest::NewClient() const {
  ServerProcess* s = server_.get();
  return HttpClient([s] { return s->base_url(); });
}

void BlackboxTest::TearDown() {
  if (!server_) return;
  if (server_->running()) {
    if (auto st = server_->Poll()) {
      ADD_FAILURE() << "sked exited on its own during the test: " << st->ToString();
    }
  }
  if (HasFailure()) {
    server_->set_keep_dir(true);
    std::cerr << "---- sked log tail (" << server_->dir() << ") ----\n"
              << server_->LogTail(120) << "---- end of sked log ----\n";
  }
  api_.reset();
  server_.reset();  // SIGKILLs a still-running server; tests that check a clean stop do Stop().
}

json::object BlackboxTest::CreateTask(const json::object& body) {
  HttpResponse r = api().PostJson("/v1/tasks", body);
  if (r.status != 201) {
    throw std::runtime_error("create " + Dump(body) + " expected 201, got " + Describe(r));
  }
  return r.Object();
}

std::vector<json::object> BlackboxTest::CreateBatch(const json::array& tasks) {
  HttpResponse r = api().PostJson("/v1/tasks:batch", json::object{{"tasks", tasks}});
  if (r.status != 201) throw std::runtime_error("batch create expected 201, got " + Describe(r));
  std::vector<json::object> out;
  json::object answer = r.Object();
  for (const auto& t : Arr(answer, "tasks")) out.push_back(t.as_object());
  return out;
}

json::object BlackboxTest::GetTask(std::string_view id) {
  HttpResponse r = api().Get("/v1/tasks/" + std::string(id));
  if (r.status != 200) throw std::runtime_error("GET task " + std::string(id) + ": " + Describe(r));
  return r.Object();
}

json::object BlackboxTest::ListPage(std::string_view query) {
  std::string target = "/v1/tasks";
  if (!query.empty()) target += "?" + std::string(query);
  HttpResponse r = api().Get(target);
  if (r.status != 200) throw std::runtime_error("GET " + target + ": " + Describe(r));
  return r.Object();
}

std::vector<json::object> BlackboxTest::ListAll(std::string_view query, int max_pages) {
  std::vector<json::object> all;
  std::optional<std::string> cursor;
  for (int page = 0; page < max_pages; ++page) {
    std::string q(query);
    if (cursor) q += (q.empty() ? "" : "&") + std::string("cursor=") + UrlEncode(*cursor);
    json::object p = ListPage(q);
    for (const auto& t : Arr(p, "tasks")) all.push_back(t.as_object());
    auto it = p.find("next_cursor");
    if (it == p.end()) throw std::runtime_error("list page without next_cursor: " + Dump(p));
    if (it->value().is_null()) return all;
    if (!it->value().is_string()) throw std::runtime_error("next_cursor not a string: " + Dump(p));
    cursor = std::string(it->value().as_string());
  }
  throw std::runtime_error("ListAll: more than " + std::to_string(max_pages) + " pages");
}

std::vector<json::object> BlackboxTest::Events(std::string_view id) {
  HttpResponse r = api().Get("/v1/tasks/" + std::string(id) + "/events");
  if (r.status != 200) throw std::runtime_error("GET events: " + Describe(r));
  std::vector<json::object> out;
  json::object answer = r.Object();
  for (const auto& e : Arr(answer, "events")) out.push_back(e.as_object());
  return out;
}

json::object BlackboxTest::WaitForTask(std::string_view id,
                                       const std::function<bool(const json::object&)>& pred,
                                       std::string_view what, milliseconds timeout) {
  json::object last;
  bool ok = WaitUntil(
      [&] {
        last = GetTask(id);
        return pred(last);
      },
      timeout, milliseconds(10));
  if (!ok) {
    throw std::runtime_error("task " + std::string(id) + " not " + std::string(what) + " within " +
                             std::to_string(timeout.count()) + " ms; last seen: " + Dump(last));
  }
  return last;
}

json::object BlackboxTest::WaitForState(std::string_view id, std::string_view state,
                                        milliseconds timeout) {
  static const std::set<std::string, std::less<>> kTerminal = {"succeeded", "failed", "cancelled"};
  std::string want(state);
  return WaitForTask(
      id,
      [&](const json::object& t) {
        std::string s = Str(t, "state");
        if (s == want) return true;
        if (kTerminal.contains(s)) {
          throw std::runtime_error("task " + std::string(id) + " ended " + s +
                                   " while waiting for " + want + ": " + Dump(t));
        }
        return false;
      },
      "in state " + want, timeout);
}

HttpResponse BlackboxTest::PostCallback(std::string_view id, const json::object& body,
                                        std::optional<std::string> token) {
  std::vector<std::string> headers;
  if (token)
    headers.push_back("Authorization: Bearer " + *token);
  else
    headers.push_back("Authorization:");  // none, even if api() has a bearer
  return api().PostJson("/v1/tasks/" + std::string(id) + "/callback", body, headers);
}

std::string BlackboxTest::TokenFor(std::string_view id, int64_t attempt) const {
  return CallbackToken(server_->options().callback_secret, id, attempt);
}

json::object BlackboxTest::ExpectError(const HttpResponse& r, long status, std::string_view code,
                                       std::optional<std::string_view> field) {
  EXPECT_EQ(r.status, status) << Describe(r);
  auto ct = r.Header("Content-Type");
  EXPECT_TRUE(ct && ct->starts_with("application/json")) << "error Content-Type: " << Describe(r);
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "error body is not a JSON object: " << Describe(r);
    return {};
  }
  const json::object& top = v.as_object();
  EXPECT_EQ(top.size(), 1u) << "error body has fields besides \"error\": " << r.body;
  auto it = top.find("error");
  if (it == top.end() || !it->value().is_object()) {
    ADD_FAILURE() << "no \"error\" object: " << r.body;
    return {};
  }
  json::object err = it->value().as_object();
  auto code_it = err.find("code");
  EXPECT_TRUE(code_it != err.end() && code_it->value().is_string() &&
              code_it->value().as_string() == code)
      << "expected code " << code << ": " << r.body;
  auto msg_it = err.find("message");
  bool msg_ok =
      msg_it != err.end() && msg_it->value().is_string() && !msg_it->value().as_string().empty();
  EXPECT_TRUE(msg_ok) << "message must be a non-empty string: " << r.body;
  auto det_it = err.find("details");
  bool det_ok = det_it != err.end() && det_it->value().is_object();
  EXPECT_TRUE(det_ok) << "details must be an object: " << r.body;
  if (field) {
    if (det_ok) {
      const json::object& det = det_it->value().as_object();
      auto f = det.find("field");
      EXPECT_TRUE(f != det.end() && f->value().is_string() && f->value().as_string() == *field)
          << "expected details.field == \"" << *field << "\": " << r.body;
    }
    if (msg_ok) {
      EXPECT_TRUE(std::string_view(msg_it->value().as_string()).starts_with(*field))
          << "message must start with the field name \"" << *field << "\": " << r.body;
    }
  }
  return err;
}

size_t BlackboxTest::CountTasks() { return ListAll("limit=1000").size(); }

}  // namespace sked::blackbox
