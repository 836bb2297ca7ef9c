// File: aws/credentials.cc
//
// The credential chain of aws/credentials.h: environment, shared credentials
// file, config file, then the instance role through IMDSv2 (libcurl).
#include "aws/credentials.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/internal/http.h"
#include "core/clock.h"

namespace sked::aws {
namespace {

using core::StatusOr;

constexpr std::string_view kTokenPath = "/latest/api/token";
constexpr std::string_view kRolesPath = "/latest/meta-data/iam/security-credentials/";

std::string_view Trim(std::string_view s) {
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  size_t e = s.size();
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The variables the chain reads, from the options' map or the process.
class EnvReader {
 public:
  explicit EnvReader(const std::optional<std::map<std::string, std::string>>& env)
      : env_(env) {}

  // Empty when unset.
  std::string Get(const std::string& name) const {
    if (env_.has_value()) {
      auto it = env_->find(name);
      return it == env_->end() ? "" : it->second;
    }
    const char* v = std::getenv(name.c_str());
    return v == nullptr ? "" : v;
  }

 private:
  const std::optional<std::map<std::string, std::string>>& env_;
};

// The path to use: the override, else the variable, else ~/.aws/<name>; "~/"
// expanded as botocore's os.path.expanduser does. Empty when HOME is needed
// but unset.
std::string FilePath(const EnvReader& env, const std::string& override_path,
                     const char* variable, const char* default_name) {
  std::string path = override_path;
  if (path.empty()) path = env.Get(variable);
  if (path.empty()) path = std::string("~/.aws/") + default_name;
  if (path == "~" || path.starts_with("~/")) {
    std::string home = env.Get("HOME");
    if (home.empty()) return "";
    path = home + path.substr(1);
  }
  return path;
}

// nullopt when the file cannot be opened.
std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Static keys from one profile section. nullopt (with `why` set) when the
// section has no access key; kFailedPrecondition when it has only part.
StatusOr<std::optional<Credentials>> StaticKeys(
    const std::map<std::string, std::string>& section, const std::string& where,
    std::string* why) {
  auto get = [&](const char* key) -> std::string {
    auto it = section.find(key);
    return it == section.end() ? "" : std::string(Trim(it->second));
  };
  Credentials c{
      .access_key_id = get("aws_access_key_id"),
      .secret_access_key = get("aws_secret_access_key"),
      .session_token = get("aws_session_token"),
  };
  if (c.access_key_id.empty()) {
    *why = "no aws_access_key_id";
    return std::optional<Credentials>();
  }
  if (c.secret_access_key.empty()) {
    return core::FailedPreconditionError(
        where + " has aws_access_key_id but no aws_secret_access_key");
  }
  return std::optional<Credentials>(std::move(c));
}

// ---------------------------------------------------------------------------
// IMDS over libcurl.

using internal::HttpResult;

// A GET (or, with a body, a PUT) to IMDS: link-local, so never through a proxy.
HttpResult ImdsRequest(const char* method, const std::string& url,
                       std::vector<std::string> headers,
                       const CredentialsProviderOptions& options) {
  internal::HttpExchange x;
  x.method = method;
  x.url = url;
  if (x.method == "PUT") {
    // A PUT with an empty body and a Content-Length: 0, as botocore sends it.
    x.body = "";
    headers.push_back("Content-Type:");
  }
  x.headers = std::move(headers);
  x.connect_timeout = options.imds_connect_timeout;
  x.timeout = options.imds_timeout;
  x.no_proxy = true;
  return internal::Perform(x);
}

std::string Describe(const char* method, std::string_view path, const HttpResult& r) {
  std::string s = std::string(method) + " " + std::string(path) + ": ";
  if (!r.transport_ok()) return s + r.curl_error;
  return s + "HTTP " + std::to_string(r.status);
}

struct RoleCredentials {
  Credentials credentials;
  core::Time expiration;
};

// Every failure is kNotFound (no role credentials here); the message says which
// step failed and never carries a secret.
StatusOr<RoleCredentials> FetchRoleCredentials(const std::string& endpoint,
                                               const EnvReader& env,
                                               const CredentialsProviderOptions& options) {
  std::string base = endpoint;
  while (base.ends_with('/')) base.pop_back();

  HttpResult put =
      ImdsRequest("PUT", base + std::string(kTokenPath),
                  {"X-aws-ec2-metadata-token-ttl-seconds: " +
                   std::to_string(kImdsTokenTtl.count())},
                  options);
  std::string token;
  if (!put.transport_ok()) {
    // Nothing listens (or answers) there; do not wait again for IMDSv1.
    return core::NotFoundError(Describe("PUT", kTokenPath, put));
  }
  if (put.status == 200) {
    token = std::string(Trim(put.body));
  } else if ((put.status == 403 || put.status == 404 || put.status == 405) &&
             Lower(env.Get("AWS_EC2_METADATA_V1_DISABLED")) != "true") {
    // botocore falls back to IMDSv1 (no token) for these answers.
  } else {
    return core::NotFoundError(Describe("PUT", kTokenPath, put));
  }
  std::vector<std::string> auth;
  if (!token.empty()) auth.push_back("X-aws-ec2-metadata-token: " + token);

  HttpResult roles = ImdsRequest("GET", base + std::string(kRolesPath), auth, options);
  if (!roles.transport_ok() || roles.status != 200) {
    std::string why = Describe("GET", kRolesPath, roles);
    if (roles.transport_ok() && roles.status == 404) why += " (no instance role attached)";
    return core::NotFoundError(why);
  }
  std::string_view list = roles.body;
  std::string role(Trim(list.substr(0, list.find('\n'))));
  if (role.empty()) {
    return core::NotFoundError(std::string("GET ") + std::string(kRolesPath) +
                               ": empty role list");
  }

  std::string role_path = std::string(kRolesPath) + role;
  HttpResult creds = ImdsRequest("GET", base + role_path, auth, options);
  if (!creds.transport_ok() || creds.status != 200) {
    return core::NotFoundError(Describe("GET", role_path, creds));
  }
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(creds.body, ec);
  if (ec || !doc.is_object()) {
    return core::NotFoundError("GET " + role_path + ": the answer is not a JSON object");
  }
  const boost::json::object& obj = doc.as_object();
  auto field = [&](std::string_view name) -> std::string {
    const boost::json::value* v = obj.if_contains(name);
    if (v == nullptr || !v->is_string()) return "";
    return std::string(v->as_string());
  };
  std::string code = field("Code");
  if (!code.empty() && code != "Success") {
    return core::NotFoundError("GET " + role_path + ": Code " + code);
  }
  RoleCredentials out;
  out.credentials = Credentials{
      .access_key_id = field("AccessKeyId"),
      .secret_access_key = field("SecretAccessKey"),
      .session_token = field("Token"),
  };
  std::string expiration = field("Expiration");
  for (const char* required : {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}) {
    if (field(required).empty()) {
      return core::NotFoundError("GET " + role_path + ": no " + required + " in the answer");
    }
  }
  std::optional<core::Time> when = core::ParseRfc3339(expiration);
  if (!when.has_value()) {
    return core::NotFoundError("GET " + role_path + ": Expiration " + Quote(expiration) +
                               " is not an RFC 3339 time");
  }
  out.expiration = *when;
  return out;
}

std::string ImdsEndpoint(const EnvReader& env, const CredentialsProviderOptions& options) {
  if (!options.imds_endpoint.empty()) return options.imds_endpoint;
  std::string e = env.Get("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  return e.empty() ? std::string(kDefaultImdsEndpoint) : e;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace

namespace detail {

IniFile ParseIni(std::string_view text) {
  IniFile out;
  std::map<std::string, std::string>* section = nullptr;
  std::string* last_value = nullptr;
  size_t last_indent = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    std::string_view stripped = Trim(line);
    if (stripped.empty() || stripped.front() == '#' || stripped.front() == ';') continue;
    size_t indent = line.find_first_not_of(" \t");
    // A line indented deeper than its key continues that key's value, as in
    // configparser (botocore uses this for nested settings).
    if (last_value != nullptr && indent > last_indent) {
      *last_value += "\n";
      *last_value += stripped;
      continue;
    }
    if (stripped.front() == '[') {
      size_t close = stripped.rfind(']');
      if (close != std::string_view::npos && close > 1) {
        section = &out[std::string(Trim(stripped.substr(1, close - 1)))];
        last_value = nullptr;
        continue;
      }
    }
    if (section == nullptr) continue;
    size_t sep = stripped.find_first_of("=:");
    if (sep == std::string_view::npos || sep == 0) continue;
    std::string key = Lower(Trim(stripped.substr(0, sep)));
    std::string& value = (*section)[key];
    value = std::string(Trim(stripped.substr(sep + 1)));
    last_value = &value;
    last_indent = indent;
  }
  return out;
}

}  // namespace detail

CredentialsProvider::CredentialsProvider(CredentialsProviderOptions options)
    : options_(std::move(options)) {}

core::Time CredentialsProvider::Now() const {
  return options_.now ? options_.now() : core::SystemClock::Get().Now();
}

StatusOr<CredentialsProvider::Resolved> CredentialsProvider::Resolve() const {
  EnvReader env(options_.environment);
  std::vector<std::string> tried;

  // 1. Environment. Like botocore, an access key without a secret is an error
  // rather than a reason to look further.
  Credentials from_env{
      .access_key_id = env.Get("AWS_ACCESS_KEY_ID"),
      .secret_access_key = env.Get("AWS_SECRET_ACCESS_KEY"),
      .session_token = env.Get("AWS_SESSION_TOKEN"),
  };
  if (!from_env.access_key_id.empty()) {
    if (from_env.secret_access_key.empty()) {
      return core::FailedPreconditionError(
          "AWS_ACCESS_KEY_ID is set in the environment but AWS_SECRET_ACCESS_KEY is not");
    }
    return Resolved{.credentials = std::move(from_env), .source = "environment"};
  }
  tried.push_back("environment (AWS_ACCESS_KEY_ID not set)");

  std::string profile = options_.profile;
  if (profile.empty()) profile = env.Get("AWS_PROFILE");
  if (profile.empty()) profile = "default";

  // 2. Shared credentials file: sections are bare profile names.
  std::string cred_path = FilePath(env, options_.credentials_file,
                                   "AWS_SHARED_CREDENTIALS_FILE", "credentials");
  if (cred_path.empty()) {
    tried.push_back("shared credentials file (HOME not set)");
  } else if (std::optional<std::string> text = ReadFile(cred_path); !text.has_value()) {
    tried.push_back("shared credentials file " + cred_path + " (cannot be read)");
  } else {
    detail::IniFile ini = detail::ParseIni(*text);
    auto it = ini.find(profile);
    std::string where = "shared credentials file " + cred_path + ", profile " + Quote(profile);
    if (it == ini.end()) {
      tried.push_back("shared credentials file " + cred_path + " (no profile " +
                      Quote(profile) + ")");
    } else {
      std::string why;
      ASSIGN_OR_RETURN(std::optional<Credentials> c, StaticKeys(it->second, where, &why));
      if (c.has_value()) {
        return Resolved{.credentials = std::move(*c), .source = "shared-credentials-file"};
      }
      tried.push_back(where + " (" + why + ")");
    }
  }

  // 3. Config file: [profile NAME], or [default] for the default profile.
  std::string config_path = FilePath(env, options_.config_file, "AWS_CONFIG_FILE", "config");
  if (config_path.empty()) {
    tried.push_back("config file (HOME not set)");
  } else if (std::optional<std::string> text = ReadFile(config_path); !text.has_value()) {
    tried.push_back("config file " + config_path + " (cannot be read)");
  } else {
    detail::IniFile ini = detail::ParseIni(*text);
    const std::map<std::string, std::string>* section = nullptr;
    for (const auto& [name, values] : ini) {
      if (name.starts_with("profile") && name.size() > 7 &&
          std::isspace(static_cast<unsigned char>(name[7])) &&
          Trim(std::string_view(name).substr(8)) == profile) {
        section = &values;
      }
    }
    if (section == nullptr && profile == "default") {
      auto it = ini.find("default");
      if (it != ini.end()) section = &it->second;
    }
    std::string where = "config file " + config_path + ", profile " + Quote(profile);
    if (section == nullptr) {
      tried.push_back("config file " + config_path + " (no profile " + Quote(profile) + ")");
    } else {
      std::string why;
      ASSIGN_OR_RETURN(std::optional<Credentials> c, StaticKeys(*section, where, &why));
      if (c.has_value()) {
        return Resolved{.credentials = std::move(*c), .source = "config-file"};
      }
      tried.push_back(where + " (" + why + ")");
    }
  }

  // 4. Instance role through IMDSv2.
  if (Lower(env.Get("AWS_EC2_METADATA_DISABLED")) == "true") {
    tried.push_back("instance metadata (AWS_EC2_METADATA_DISABLED=true)");
  } else {
    std::string endpoint = ImdsEndpoint(env, options_);
    StatusOr<RoleCredentials> role = FetchRoleCredentials(endpoint, env, options_);
    if (role.ok()) {
      return Resolved{.credentials = std::move(role->credentials),
                      .source = "instance-metadata",
                      .expiration = role->expiration};
    }
    tried.push_back("instance metadata " + endpoint + " (" + role.status().message() + ")");
  }

  return core::NotFoundError("no AWS credentials found; tried: " + Join(tried, "; "));
}

StatusOr<Credentials> CredentialsProvider::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cached_.has_value()) {
    ASSIGN_OR_RETURN(Resolved r, Resolve());
    cached_ = std::move(r);
    return cached_->credentials;
  }
  if (!cached_->expiration.has_value()) return cached_->credentials;

  core::Time now = Now();
  core::Time expiration = *cached_->expiration;
  if (now + options_.refresh_window < expiration) return cached_->credentials;

  // Refresh from the source that gave them, as botocore's refreshable
  // credentials do, instead of walking the chain again.
  EnvReader env(options_.environment);
  std::string endpoint = ImdsEndpoint(env, options_);
  StatusOr<RoleCredentials> role = FetchRoleCredentials(endpoint, env, options_);
  if (role.ok()) {
    cached_->credentials = std::move(role->credentials);
    cached_->expiration = role->expiration;
    return cached_->credentials;
  }
  if (now < expiration) return cached_->credentials;
  return core::UnavailableError("instance role credentials expired at " +
                                core::FormatRfc3339(expiration) +
                                " and the refresh from " + endpoint +
                                " failed: " + role.status().message());
}

std::string CredentialsProvider::source() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_.has_value() ? cached_->source : "";
}

StatusOr<Credentials> CredentialsFromEnvironment() {
  auto get = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v == nullptr ? "" : v;
  };
  Credentials c{
      .access_key_id = get("AWS_ACCESS_KEY_ID"),
      .secret_access_key = get("AWS_SECRET_ACCESS_KEY"),
      .session_token = get("AWS_SESSION_TOKEN"),
  };
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return core::NotFoundError(
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set in the environment");
  }
  return c;
}

}  // namespace sked::aws
