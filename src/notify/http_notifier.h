// File: notify/http_notifier.h
//
// core::Notifier over HTTP: POSTs the task as JSON (the body of GET
// /v1/tasks/{id}) with
//   Content-Type: application/json
//   X-Sked-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>
//   X-Sked-Task-Id: <id>
// and counts any 2xx as delivered. Redirects are not followed (a webhook
// receiver that moved should be reconfigured, not chased).
//
// Thread safety: safe for concurrent use; one curl handle per call.
#pragma once

#include <chrono>
#include <string>

#include "core/notifier.h"

namespace sked::notify {

inline constexpr std::chrono::seconds kDefaultWebhookTimeout{10};

struct HttpNotifierOptions {
  // Key of X-Sked-Signature; receivers verify with the same key. Required.
  std::string secret;
  // Whole-request timeout. Default: kDefaultWebhookTimeout.
  std::chrono::seconds timeout = kDefaultWebhookTimeout;
  std::string user_agent = "sked";
};

class HttpNotifier final : public core::Notifier {
 public:
  explicit HttpNotifier(HttpNotifierOptions options);
  core::Status Notify(const std::string& url, const core::Task& task) override;

 private:
  const HttpNotifierOptions options_;
};

}  // namespace sked::notify
