// File: ec2emu/emulator.h
//
// sked-ec2-emulator: a local stand-in for EC2 and each instance's IMDSv2, so
// the EC2 Spot runner, AWS's own CLI and botocore can be tested end to end on
// one machine (specs/ec2-spot.md section 8(b); docs/EC2_EMULATOR.md for
// users). One listener on 127.0.0.1 serves:
//
//   POST /                    the EC2 Query API (ec2emu/ec2_api.h), SigV4
//                             checked against the configured keys and the
//                             instance-role keys the emulator minted.
//   /_emulator/...            the JSON control API (no signature): health,
//                             instance list, interrupt / rebalance / kill /
//                             shutdown an instance, faults.
//
// Each launched instance gets its own IMDSv2 listener (ec2emu/imds.h) on
// another loopback port, and, once running, its user data runs as a child
// process group in `<work dir>/<instance id>/` with
// AWS_EC2_METADATA_SERVICE_ENDPOINT pointing at that listener and
// `shutdown`/`poweroff`/`halt` on its PATH (ec2emu/process_runner.h).
// Terminating an instance sends SIGTERM to its group, SIGKILL after the grace,
// removes the Docker containers labelled sked.ec2-instance=<id>, then marks it
// terminated and stops its IMDS.
//
// Thread safety: Emulator is safe for concurrent use from multiple threads
// without external synchronization; Stop() may be called from any thread,
// more than once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/http_types.h"
#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/logger.h"
#include "core/status.h"
#include "ec2emu/model.h"

namespace sked::ec2emu {

inline constexpr std::chrono::milliseconds kDefaultPendingDelay{500};
inline constexpr std::chrono::seconds kDefaultSpotWarning{120};
inline constexpr std::chrono::seconds kDefaultTerminateGrace{5};
inline constexpr std::chrono::milliseconds kDefaultTick{20};

struct EmulatorOptions {
  // Where the EC2 + control listener binds. Default: 127.0.0.1, any free port.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // The region requests must be signed for. Default: us-east-1.
  std::string region = "us-east-1";
  // Access key id + secret pairs accepted. Default (empty): test / test.
  std::vector<aws::Credentials> credentials;
  // pending -> running. Default: 0.5 s.
  std::chrono::microseconds pending_delay = kDefaultPendingDelay;
  // Interruption notice -> termination, when the control call names none.
  // Default: 120 s, as on EC2.
  std::chrono::microseconds spot_warning = kDefaultSpotWarning;
  // SIGTERM -> SIGKILL for an instance's process group. Default: 5 s.
  std::chrono::microseconds terminate_grace = kDefaultTerminateGrace;
  // The faults in force at start (see Faults). Default: none.
  Faults faults;
  // Holds one directory per instance. Default (empty): a fresh temporary
  // directory, removed by Stop().
  std::string work_dir;
  // Added to every user-data process's environment.
  std::vector<std::pair<std::string, std::string>> instance_env;
  // false: instances are records only; no user data runs. Default: true.
  bool run_user_data = true;
  // The environment user data starts from ("K=V"). Default (nullopt): this
  // process's, read at Start().
  std::optional<std::vector<std::string>> base_environment;
  // How often lifecycle deadlines and processes are checked. Default: 20 ms.
  std::chrono::milliseconds tick = kDefaultTick;
  // Default: core::SystemClock.
  const core::Clock* clock = nullptr;
  // One line per EC2 call and lifecycle step. Default: discards.
  core::Logger* logger = nullptr;
};

// Validates options; InvalidArgument names the bad one.
core::Status ValidateEmulatorOptions(const EmulatorOptions& options);

class Emulator {
 public:
  // Binds the listener and starts the lifecycle thread. InvalidArgument for
  // bad options, Unavailable when the port cannot be bound, Internal when the
  // work directory cannot be made. The caller owns the result.
  static core::StatusOr<std::unique_ptr<Emulator>> Start(EmulatorOptions options);

  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  // The bound port and "http://127.0.0.1:PORT/".
  uint16_t port() const;
  std::string url() const;
  const std::string& work_dir() const;

  // What the listener does with a request (EC2 or control API); for tests
  // that need no socket.
  api::HttpResponse Handle(const api::HttpRequest& request);

  // Stops the listener, terminates every instance (SIGTERM, SIGKILL after the
  // grace, labelled containers removed), stops the IMDS listeners and removes
  // a temporary work directory. Idempotent; the destructor calls it.
  void Stop();

  // The model, for tests that inspect state directly.
  Ec2Model& TEST_model();

 private:
  struct Impl;
  explicit Emulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sked::ec2emu
