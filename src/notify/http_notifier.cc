#include "notify/http_notifier.h"

#include <curl/curl.h>

#include <boost/json/serialize.hpp>
#include <memory>
#include <utility>

#include "api/callback_token.h"
#include "api/task_json.h"

namespace sked::notify {

namespace {

size_t DiscardBody(char*, size_t size, size_t nmemb, void*) { return size * nmemb; }

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

HttpNotifier::HttpNotifier(HttpNotifierOptions options) : options_(std::move(options)) {}

core::Status HttpNotifier::Notify(const std::string& url, const core::Task& task) {
  const std::string body = boost::json::serialize(api::TaskToJson(task));
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return core::InternalError("curl_easy_init failed");
  curl_slist* raw = nullptr;
  for (const std::string& h :
       {std::string("Content-Type: application/json"),
        "X-Sked-Signature: sha256=" + api::HmacSha256Hex(options_.secret, body),
        "X-Sked-Task-Id: " + task.id, std::string("Expect:")}) {
    raw = curl_slist_append(raw, h.c_str());
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, DiscardBody);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) return core::UnavailableError(curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) return core::UnavailableError("HTTP " + std::to_string(status));
  return core::OkStatus();
}

}  // namespace sked::notify
