#include "exec/docker/docker_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <boost/json.hpp>
#include <functional>
#include <mutex>
#include <string_view>
#include <utility>

#include "exec/docker/internal/docker_wire.h"

namespace sked::exec {

namespace json = boost::json;

namespace {

// Bodies above this size (e.g. the logs of a chatty container read without a
// tail) are refused rather than held in memory.
constexpr size_t kMaxBodyBytes = size_t{64} << 20;
// How much of an error body is quoted in a message when it is not JSON.
constexpr size_t kMaxQuotedBody = 512;

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

// Container ids and names: [A-Za-z0-9_.-]+. Checked so that no caller-provided
// text can change which API path a request reaches.
core::Status CheckContainerRef(const std::string& id) {
  if (id.empty()) return core::InvalidArgumentError("docker: empty container id");
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return core::InvalidArgumentError("docker: invalid container id '" + id + "'");
  }
  return core::OkStatus();
}

// An image reference as a URL path: each '/'-separated part percent-encoded.
core::StatusOr<std::string> ImagePath(const std::string& image) {
  if (image.empty()) return core::InvalidArgumentError("docker: empty image reference");
  std::string out;
  size_t start = 0;
  while (true) {
    size_t slash = image.find('/', start);
    std::string_view part = std::string_view(image).substr(start, slash - start);
    if (part.empty() || part == "." || part == "..")
      return core::InvalidArgumentError("docker: invalid image reference '" + image + "'");
    if (!out.empty()) out += '/';
    out += PercentEncode(part);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

// Parses `body` as a JSON object. kInternal (naming `what`) if it is not one.
core::StatusOr<json::object> ParseObject(std::string_view body, const std::string& what) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return core::InternalError(what + ": engine sent invalid JSON: " + ec.message());
  if (!v.is_object()) return core::InternalError(what + ": engine sent JSON that is not an object");
  return std::move(v.as_object());
}

std::string StringField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return "";
  return std::string(v->get_string());
}

std::optional<int64_t> IntField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(v->get_uint64());
  return std::nullopt;
}

const json::object* ObjectField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v == nullptr ? nullptr : v->if_object();
}

std::map<std::string, std::string> LabelsField(const json::object& o, std::string_view key) {
  std::map<std::string, std::string> labels;
  if (const json::object* l = ObjectField(o, key)) {
    for (const auto& [k, v] : *l)
      if (v.is_string()) labels.emplace(std::string(k), std::string(v.get_string()));
  }
  return labels;
}

// The engine's error text: the `message` of a JSON body, else the body itself.
std::string EngineMessage(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    std::string m = StringField(v.as_object(), "message");
    if (!m.empty()) return m;
  }
  std::string text(body.substr(0, kMaxQuotedBody));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.empty() ? "(empty body)" : text;
}

// Maps a non-success HTTP status to a code chosen by retry meaning.
core::Status HttpError(long status, const std::string& what, std::string_view body) {
  std::string msg = what + ": " + EngineMessage(body);
  if (status >= 500) return core::UnavailableError(std::move(msg));
  switch (status) {
    case 400:
      return core::InvalidArgumentError(std::move(msg));
    case 401:
      return core::UnauthenticatedError(std::move(msg));
    case 403:
      return core::PermissionDeniedError(std::move(msg));
    case 404:
      return core::NotFoundError(std::move(msg));
    default:
      return core::FailedPreconditionError(msg + " (HTTP " + std::to_string(status) + ")");
  }
}

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Incremental reader of a pull's progress stream: one JSON object per line.
// Keeps the last error and the start of the body (the error text of a non-200).
class PullStreamReader {
 public:
  void Feed(std::string_view chunk) {
    if (head_.size() < kMaxQuotedBody) head_.append(chunk.substr(0, kMaxQuotedBody - head_.size()));
    pending_.append(chunk);
    size_t nl;
    while ((nl = pending_.find('\n')) != std::string::npos) {
      Line(std::string_view(pending_).substr(0, nl));
      pending_.erase(0, nl + 1);
    }
  }
  void Finish() {
    Line(pending_);
    pending_.clear();
  }
  const std::optional<std::string>& error() const { return error_; }
  const std::string& head() const { return head_; }

 private:
  void Line(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) return;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) return;  // Progress lines are advisory; skip noise.
    const json::object& o = v.as_object();
    std::string err = StringField(o, "error");
    if (err.empty()) {
      if (const json::object* d = ObjectField(o, "errorDetail")) err = StringField(*d, "message");
    }
    if (!err.empty()) error_ = std::move(err);
  }

  std::string pending_;
  std::string head_;
  std::optional<std::string> error_;
};

}  // namespace

struct DockerClient::Request {
  std::string method = "GET";
  std::string target;     // Path and query below the version prefix, e.g. "/containers/json".
  bool versioned = true;  // Prefix target with "/v<api_version>".
  std::optional<std::string> json_body;
  std::chrono::milliseconds timeout{0};   // Whole exchange; 0 = no limit.
  std::chrono::seconds stall_timeout{0};  // Abort after this long without data; 0 = off.
  // When set, the body goes here chunk by chunk instead of into Response::body.
  std::function<void(std::string_view)> on_body;
};

struct DockerClient::Response {
  long status = 0;
  std::string body;
};

namespace {

struct WriteState {
  std::string* body;
  const std::function<void(std::string_view)>* on_body;
  bool too_large = false;
};

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* st = static_cast<WriteState*>(user);
  size_t n = size * nmemb;
  if (*st->on_body) {
    (*st->on_body)(std::string_view(data, n));
    return n;
  }
  if (st->body->size() + n > kMaxBodyBytes) {
    st->too_large = true;
    return 0;  // Makes curl fail with CURLE_WRITE_ERROR.
  }
  st->body->append(data, n);
  return n;
}

}  // namespace

DockerClient::DockerClient(DockerClientOptions options, std::string socket_path)
    : options_(std::move(options)), socket_path_(std::move(socket_path)) {}

DockerClient::~DockerClient() = default;

core::StatusOr<std::unique_ptr<DockerClient>> DockerClient::Connect(DockerClientOptions options) {
  constexpr std::string_view kScheme = "unix://";
  std::string_view host = options.host;
  if (host.substr(0, kScheme.size()) != kScheme || host.size() <= kScheme.size() ||
      host[kScheme.size()] != '/')
    return core::InvalidArgumentError("docker host: '" + options.host +
                                      "' is not unix://<absolute socket path>");
  if (options.request_timeout <= std::chrono::seconds::zero() ||
      options.pull_timeout <= std::chrono::seconds::zero())
    return core::InvalidArgumentError("docker: request_timeout and pull_timeout must be positive");
  InitCurlOnce();
  std::string path(host.substr(kScheme.size()));
  std::unique_ptr<DockerClient> client(new DockerClient(std::move(options), std::move(path)));
  RETURN_IF_ERROR(client->Ping());

  Request req{
      .target = "/version", .versioned = false, .timeout = client->options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, client->Do(req, "docker version"));
  if (resp.status != 200) return HttpError(resp.status, "docker version", resp.body);
  ASSIGN_OR_RETURN(json::object v, ParseObject(resp.body, "docker version"));
  ASSIGN_OR_RETURN(client->api_version_, detail::ChooseApiVersion(StringField(v, "MinAPIVersion"),
                                                                  StringField(v, "ApiVersion")));
  return client;
}

core::StatusOr<DockerClient::Response> DockerClient::Do(const Request& request,
                                                        const std::string& what) const {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return core::InternalError(what + ": curl_easy_init failed");
  std::string url = "http://localhost";
  if (request.versioned) url += "/v" + api_version_;
  url += request.target;

  Response resp;
  WriteState ws{&resp.body, &request.on_body};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Expect:");
  if (request.json_body) headers = curl_slist_append(headers, "Content-Type: application/json");

  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sked-docker-client/0.1");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ws);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::chrono::milliseconds(options_.request_timeout).count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  if (request.stall_timeout.count() > 0) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(request.stall_timeout.count()));
  }
  if (request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    const std::string& body = request.json_body ? *request.json_body : std::string();
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_COPYPOSTFIELDS, body.c_str());
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);

  if (rc == CURLE_OK) return resp;
  std::string detail = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
  std::string msg = what + ": " + detail + " (engine at unix://" + socket_path_ + ")";
  if (ws.too_large)
    return core::ResourceExhaustedError(what + ": response larger than " +
                                        std::to_string(kMaxBodyBytes) + " bytes");
  if (rc == CURLE_OPERATION_TIMEDOUT) return core::DeadlineExceededError(std::move(msg));
  return core::UnavailableError(std::move(msg));
}

core::Status DockerClient::Ping() {
  Request req{.target = "/_ping", .versioned = false, .timeout = options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, Do(req, "docker ping"));
  if (resp.status != 200) return HttpError(resp.status, "docker ping", resp.body);
  return core::OkStatus();
}

core::StatusOr<bool> DockerClient::ImageExists(const std::string& image) {
  const std::string what = "inspect image " + image;
  ASSIGN_OR_RETURN(std::string path, ImagePath(image));
  Request req{.target = "/images/" + path + "/json", .timeout = options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, Do(req, what));
  if (resp.status == 200) return true;
  if (resp.status == 404) return false;
  return HttpError(resp.status, what, resp.body);
}

core::Status DockerClient::PullImage(const std::string& image) {
  const std::string what = "pull " + image;
  RETURN_IF_ERROR(ImagePath(image).status());
  detail::ImageRef ref = detail::SplitImageReference(image);
  if (ref.name.empty()) return core::InvalidArgumentError(what + ": no image name");
  PullStreamReader reader;
  Request req{.method = "POST",
              .target = "/images/create?fromImage=" + PercentEncode(ref.name) +
                        "&tag=" + PercentEncode(ref.tag),
              .timeout = options_.pull_timeout,
              .stall_timeout = options_.request_timeout,
              .on_body = [&reader](std::string_view chunk) { reader.Feed(chunk); }};
  ASSIGN_OR_RETURN(Response resp, Do(req, what));
  reader.Finish();
  if (resp.status != 200) return HttpError(resp.status, what, reader.head());
  // The engine reports failures after the 200 header inside the stream.
  if (reader.error()) return core::FailedPreconditionError(what + ": " + *reader.error());
  return core::OkStatus();
}

core::StatusOr<std::string> DockerClient::CreateContainer(const ContainerSpec& spec) {
  const std::string what = "create container" + (spec.name.empty() ? "" : " " + spec.name);
  if (spec.image.empty()) return core::InvalidArgumentError(what + ": image is empty");
  if (!spec.name.empty()) RETURN_IF_ERROR(CheckContainerRef(spec.name));
  if (spec.memory_bytes < 0 || spec.nano_cpus < 0)
    return core::InvalidArgumentError(what + ": negative resource limit");

  auto check_text = [&](const std::string& s, const std::string& field) -> core::Status {
    if (s.find('\0') != std::string::npos)
      return core::InvalidArgumentError(what + ": " + field + " holds a NUL byte");
    if (!detail::IsValidUtf8(s))
      return core::InvalidArgumentError(what + ": " + field + " is not valid UTF-8");
    return core::OkStatus();
  };

  json::object body;
  body["Image"] = spec.image;
  if (!spec.cmd.empty()) {
    json::array cmd;
    for (const std::string& arg : spec.cmd) {
      RETURN_IF_ERROR(check_text(arg, "cmd"));
      cmd.emplace_back(arg);
    }
    body["Cmd"] = std::move(cmd);
  }
  json::array env;
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('=') != std::string::npos)
      return core::InvalidArgumentError(what + ": invalid env name '" + k + "'");
    RETURN_IF_ERROR(check_text(k, "env name"));
    RETURN_IF_ERROR(check_text(v, "env " + k));
    env.emplace_back(k + "=" + v);
  }
  body["Env"] = std::move(env);
  json::object labels;
  for (const auto& [k, v] : spec.labels) {
    RETURN_IF_ERROR(check_text(k, "label name"));
    RETURN_IF_ERROR(check_text(v, "label " + k));
    labels[k] = v;
  }
  body["Labels"] = std::move(labels);
  json::object host_config;
  if (!spec.network_mode.empty()) host_config["NetworkMode"] = spec.network_mode;
  if (spec.memory_bytes > 0) host_config["Memory"] = spec.memory_bytes;
  if (spec.nano_cpus > 0) host_config["NanoCpus"] = spec.nano_cpus;
  body["HostConfig"] = std::move(host_config);

  std::string target = "/containers/create";
  if (!spec.name.empty()) target += "?name=" + PercentEncode(spec.name);
  Request req{.method = "POST",
              .target = std::move(target),
              .json_body = json::serialize(body),
              .timeout = options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, Do(req, what));
  if (resp.status == 409) return core::AlreadyExistsError(what + ": " + EngineMessage(resp.body));
  if (resp.status != 201) return HttpError(resp.status, what, resp.body);
  ASSIGN_OR_RETURN(json::object o, ParseObject(resp.body, what));
  std::string id = StringField(o, "Id");
  if (id.empty()) return core::InternalError(what + ": engine returned no container id");
  return id;
}

core::Status DockerClient::StartContainer(const std::string& id) {
  const std::string what = "start container " + id;
  RETURN_IF_ERROR(CheckContainerRef(id));
  Request req{.method = "POST",
              .target = "/containers/" + id + "/start",
              .timeout = options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, Do(req, what));
  if (resp.status == 204 || resp.status == 304) return core::OkStatus();  // 304: already running.
  return HttpError(resp.status, what, resp.body);
}

core::StatusOr<int> DockerClient::WaitContainer(const std::string& id,
                                                std::chrono::milliseconds timeout) {
  const std::string what = "wait for container " + id;
  RETURN_IF_ERROR(CheckContainerRef(id));
  if (timeout < std::chrono::milliseconds::zero())
    return core::InvalidArgumentError(what + ": negative timeout");
  // A long poll: the engine answers only when the container stops, so the
  // ordinary request timeout does not apply.
  Request req{.method = "POST",
              .target = "/containers/" + id + "/wait?condition=not-running",
              .timeout = timeout};
  auto resp_or = Do(req, what);
  if (!resp_or.ok()) {
    if (resp_or.status().code() == core::StatusCode::kDeadlineExceeded)
      return core::DeadlineExceededError(what + ": still running after " +
                                         std::to_string(timeout.count()) + " ms");
    return resp_or.status();
  }
  Response& resp = *resp_or;
  if (resp.status != 200) return HttpError(resp.status, what, resp.body);
  ASSIGN_OR_RETURN(json::object o, ParseObject(resp.body, what));
  if (const json::object* err = ObjectField(o, "Error")) {
    std::string m = StringField(*err, "Message");
    if (!m.empty()) return core::InternalError(what + ": " + m);
  }
  std::optional<int64_t> code = IntField(o, "StatusCode");
  if (!code || *code < INT32_MIN || *code > INT32_MAX)
    return core::InternalError(what + ": engine sent no usable StatusCode");
  return static_cast<int>(*code);
}

core::Status DockerClient::KillContainer(const std::string& id) {
  const std::string what = "kill container " + id;
  RETURN_IF_ERROR(CheckContainerRef(id));
  Request req{.method = "POST",
              .target = "/containers/" + id + "/kill",
              .timeout = options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, Do(req, what));
  // 409: not running; 404: gone. Either way nothing is left to kill.
  if (resp.status == 204 || resp.status == 409 || resp.status == 404) return core::OkStatus();
  return HttpError(resp.status, what, resp.body);
}

core::Status DockerClient::RemoveContainer(const std::string& id) {
  const std::string what = "remove container " + id;
  RETURN_IF_ERROR(CheckContainerRef(id));
  Request req{.method = "DELETE",
              .target = "/containers/" + id + "?force=true&v=true",
              .timeout = options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, Do(req, what));
  if (resp.status == 204 || resp.status == 404) return core::OkStatus();
  std::string msg = EngineMessage(resp.body);
  // Another caller's removal is already under way; the outcome is the same.
  if (resp.status == 409 && msg.find("already in progress") != std::string::npos)
    return core::OkStatus();
  return HttpError(resp.status, what, resp.body);
}

core::StatusOr<std::string> DockerClient::Logs(const std::string& id, int tail_lines) {
  const std::string what = "logs of container " + id;
  RETURN_IF_ERROR(CheckContainerRef(id));
  std::string tail = tail_lines < 0 ? "all" : std::to_string(tail_lines);
  Request req{.target = "/containers/" + id + "/logs?stdout=1&stderr=1&follow=0&tail=" + tail,
              .timeout = options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, Do(req, what));
  if (resp.status != 200) return HttpError(resp.status, what, resp.body);
  return detail::DemuxLogStream(resp.body);
}

core::StatusOr<ContainerInfo> DockerClient::Inspect(const std::string& id) {
  const std::string what = "inspect container " + id;
  RETURN_IF_ERROR(CheckContainerRef(id));
  Request req{.target = "/containers/" + id + "/json", .timeout = options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, Do(req, what));
  if (resp.status != 200) return HttpError(resp.status, what, resp.body);
  ASSIGN_OR_RETURN(json::object o, ParseObject(resp.body, what));
  ContainerInfo info;
  info.id = StringField(o, "Id");
  if (info.id.empty()) return core::InternalError(what + ": engine sent no Id");
  info.name = StringField(o, "Name");
  if (!info.name.empty() && info.name.front() == '/') info.name.erase(0, 1);
  if (const json::object* config = ObjectField(o, "Config"))
    info.labels = LabelsField(*config, "Labels");
  const json::object* state = ObjectField(o, "State");
  if (state == nullptr) return core::InternalError(what + ": engine sent no State");
  info.status = StringField(*state, "Status");
  if (const json::value* r = state->if_contains("Running"); r && r->is_bool())
    info.running = r->get_bool();
  if (info.status == "exited") {
    std::optional<int64_t> code = IntField(*state, "ExitCode");
    if (code && *code >= INT32_MIN && *code <= INT32_MAX) info.exit_code = static_cast<int>(*code);
  }
  return info;
}

core::StatusOr<std::vector<ContainerInfo>> DockerClient::ListContainers(
    const std::map<std::string, std::string>& label_filter, bool all) {
  const std::string what = "list containers";
  std::string target = std::string("/containers/json?all=") + (all ? "1" : "0");
  if (!label_filter.empty()) {
    json::array labels;
    for (const auto& [k, v] : label_filter) labels.emplace_back(v.empty() ? k : k + "=" + v);
    json::object filters;
    filters["label"] = std::move(labels);
    target += "&filters=" + PercentEncode(json::serialize(filters));
  }
  Request req{.target = std::move(target), .timeout = options_.request_timeout};
  ASSIGN_OR_RETURN(Response resp, Do(req, what));
  if (resp.status != 200) return HttpError(resp.status, what, resp.body);
  boost::system::error_code ec;
  json::value v = json::parse(resp.body, ec);
  if (ec || !v.is_array()) return core::InternalError(what + ": engine sent no JSON array");
  std::vector<ContainerInfo> out;
  for (const json::value& item : v.as_array()) {
    const json::object* o = item.if_object();
    if (o == nullptr) return core::InternalError(what + ": engine sent a non-object entry");
    ContainerInfo info;
    info.id = StringField(*o, "Id");
    if (info.id.empty()) return core::InternalError(what + ": engine sent an entry without Id");
    if (const json::value* names = o->if_contains("Names"); names && names->is_array()) {
      const json::array& a = names->get_array();
      if (!a.empty() && a.front().is_string()) info.name = std::string(a.front().get_string());
      if (!info.name.empty() && info.name.front() == '/') info.name.erase(0, 1);
    }
    info.labels = LabelsField(*o, "Labels");
    info.status = StringField(*o, "State");  // The list's State is Inspect's State.Status.
    info.running = info.status == "running";
    if (info.status == "exited")
      info.exit_code = detail::ExitCodeFromStatusText(StringField(*o, "Status"));
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace sked::exec
