// File: aws/credentials.h
//
// The AWS credential chain: where sked finds the keys that aws/sigv4.h signs
// with. It looks in the same places, in the same order, as botocore's default
// chain, so a machine set up for the AWS CLI works for sked unchanged:
//
//   1. Environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ optional
//      AWS_SESSION_TOKEN).
//   2. Shared credentials file: AWS_SHARED_CREDENTIALS_FILE, default
//      ~/.aws/credentials, section [PROFILE] where PROFILE is AWS_PROFILE or
//      "default". Keys aws_access_key_id, aws_secret_access_key and optional
//      aws_session_token.
//   3. Config file: AWS_CONFIG_FILE, default ~/.aws/config, section
//      [profile PROFILE] (or [default]) with the same static keys.
//   4. Instance role via IMDSv2 (specs/ec2-spot.md section 6): endpoint
//      AWS_EC2_METADATA_SERVICE_ENDPOINT, default http://169.254.169.254;
//      skipped when AWS_EC2_METADATA_DISABLED=true. PUT /latest/api/token,
//      GET /latest/meta-data/iam/security-credentials/ (the role name), then
//      GET .../<role> (JSON AccessKeyId, SecretAccessKey, Token, Expiration).
//      Timeouts are short (1 s connect, 2 s per request) so a machine without
//      IMDS fails fast.
//
// The files are parsed as Python's configparser parses them for botocore:
// full-line comments start with '#' or ';' (a '#' after a value is part of the
// value), '=' or ':' separates key and value with any whitespace around it,
// key names are case-insensitive, section names are case-sensitive, and a
// line indented deeper than the key before it continues that key's value.
// Unlike configparser, whitespace just inside the brackets of a section
// header is ignored ("[ work ]" is profile "work").
//
// Secrets never appear in any returned status message.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "aws/sigv4.h"
#include "core/status.h"
#include "core/time.h"

namespace sked::aws {

inline constexpr std::string_view kDefaultImdsEndpoint = "http://169.254.169.254";
inline constexpr std::chrono::milliseconds kDefaultImdsConnectTimeout{1000};
inline constexpr std::chrono::milliseconds kDefaultImdsTimeout{2000};
// The token TTL requested from IMDS (the maximum it allows).
inline constexpr std::chrono::seconds kImdsTokenTtl{21600};
// Role credentials are fetched again once they are this close to Expiration.
inline constexpr std::chrono::minutes kDefaultRefreshWindow{5};

struct CredentialsProviderOptions {
  // The variables the chain reads (AWS_*, HOME) instead of the process
  // environment. Default (nullopt): the real environment, read at each
  // resolution. Tests pass a map so they never touch the process state.
  std::optional<std::map<std::string, std::string>> environment;
  // Override the shared credentials / config file path. Default (empty):
  // AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE, else ~/.aws/credentials /
  // ~/.aws/config. A leading "~/" is expanded with HOME.
  std::string credentials_file;
  std::string config_file;
  // Override the profile. Default (empty): AWS_PROFILE, else "default".
  std::string profile;
  // Override the IMDS base URL. Default (empty):
  // AWS_EC2_METADATA_SERVICE_ENDPOINT, else kDefaultImdsEndpoint.
  std::string imds_endpoint;
  // Default: 1 s to connect, 2 s for a whole request.
  std::chrono::milliseconds imds_connect_timeout = kDefaultImdsConnectTimeout;
  std::chrono::milliseconds imds_timeout = kDefaultImdsTimeout;
  // Default: 5 minutes.
  std::chrono::seconds refresh_window = kDefaultRefreshWindow;
  // Wall clock used to decide when role credentials need a refresh.
  // Default (empty): core::SystemClock.
  std::function<core::Time()> now;
};

// Resolves credentials through the chain above and keeps them.
//
// The first Get() walks the chain. Credentials from the environment or a file
// are then returned as they are on every later call. Instance-role credentials
// are cached until they are within `refresh_window` of their Expiration, then
// fetched again from IMDS; if that refresh fails while the old ones have not
// expired yet, the old ones are returned. A failed resolution is not cached:
// the next Get() walks the chain again.
//
// Thread safety: CredentialsProvider is safe for concurrent use from multiple
// threads without external synchronization; concurrent callers during a
// refresh wait for that one refresh rather than starting their own.
class CredentialsProvider {
 public:
  explicit CredentialsProvider(CredentialsProviderOptions options = {});

  CredentialsProvider(const CredentialsProvider&) = delete;
  CredentialsProvider& operator=(const CredentialsProvider&) = delete;

  // OK: usable credentials (copied out; the caller owns them).
  // kNotFound: no source had credentials; the message lists each source tried
  //   and why it gave nothing.
  // kFailedPrecondition: a source is set up but incomplete (only one of the two
  //   key variables set, a profile with aws_access_key_id but no
  //   aws_secret_access_key, ...); the chain stops there, as botocore does,
  //   and the message names the variable, or the file and profile.
  // kUnavailable: instance-role credentials have expired and IMDS failed to
  //   refresh them.
  core::StatusOr<Credentials> Get();

  // Where the credentials returned last came from: "environment",
  // "shared-credentials-file", "config-file" or "instance-metadata"; empty
  // before the first successful Get().
  std::string source() const;

 private:
  struct Resolved {
    Credentials credentials;
    std::string source;
    // Set only for instance-role credentials.
    std::optional<core::Time> expiration;
  };

  core::StatusOr<Resolved> Resolve() const;
  core::Time Now() const;

  const CredentialsProviderOptions options_;
  mutable std::mutex mu_;
  std::optional<Resolved> cached_;  // Guarded by mu_.
};

// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optional AWS_SESSION_TOKEN from
// the process environment only. kNotFound when either key variable is unset or
// empty. Prefer CredentialsProvider, which also reads the files and IMDS.
core::StatusOr<Credentials> CredentialsFromEnvironment();

namespace detail {

// One INI file as configparser reads it: section name -> lower-cased key ->
// value (whitespace-trimmed). Keys before any section header are dropped.
using IniFile = std::map<std::string, std::map<std::string, std::string>>;
IniFile ParseIni(std::string_view text);

}  // namespace detail

}  // namespace sked::aws
