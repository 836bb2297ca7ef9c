// The command line, as an operator meets it: help, a bad flag, and configuration
// from SKED_* environment variables instead of flags.
#include <gmock/gmock.h>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using ::testing::HasSubstr;

TEST(CliTest, TopLevelHelpExitsZeroAndNamesServe) {
  CommandResult r = RunCommand({SkedBinary(), "--help"});
  EXPECT_TRUE(r.status.exited && r.status.code == 0) << r.status.ToString() << "\n" << r.output;
  EXPECT_THAT(r.output, HasSubstr("serve"));
}

TEST(CliTest, ServeHelpExitsZeroAndListsItsFlags) {
  CommandResult r = RunCommand({SkedBinary(), "serve", "--help"});
  EXPECT_TRUE(r.status.exited && r.status.code == 0) << r.status.ToString() << "\n" << r.output;
  for (const char* flag : {"--listen", "--db", "--time-scale", "--api-token", "--callback-secret",
                           "--bar-url", "--concurrency", "--claim-batch", "--claimers",
                           "--node-id", "--shutdown-grace-s", "--node-retention-s"}) {
    EXPECT_THAT(r.output, HasSubstr(flag)) << "serve --help does not mention " << flag;
  }
}

TEST(CliTest, UnknownFlagExitsNonZeroWithoutServing) {
  CommandResult r = RunCommand({SkedBinary(), "serve", "--no-such-flag", "1"}, seconds(10));
  EXPECT_TRUE(r.status.exited) << "did not exit by itself: " << r.status.ToString();
  EXPECT_NE(r.status.code, 0) << r.output;
}

TEST(CliTest, AClaimTuningOutOfRangeIsRefusedByName) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--claim-batch", "0"}, {"--claim-batch", "1001"}, {"--claimers", "0"},
           {"--claimers", "17"}}) {
    CommandResult r = RunCommand(
        {SkedBinary(), "serve", "--listen", "127.0.0.1:0", "--db", ":memory:", flag, value},
        seconds(10));
    EXPECT_TRUE(r.status.exited && r.status.code != 0) << flag << " " << value << ": "
                                                       << r.status.ToString();
    EXPECT_THAT(r.output, HasSubstr(flag + ": must be in")) << r.output;
  }
}

// A node listed alive for 3 leases after its last heartbeat must not be
// removed before that.
TEST(CliTest, ANodeRetentionShorterThanThreeLeasesIsRefused) {
  for (const char* value : {"1", "89", "-1"}) {
    CommandResult r = RunCommand({SkedBinary(), "serve", "--listen", "127.0.0.1:0", "--db",
                                  ":memory:", "--lease-s", "30", "--node-retention-s", value},
                                 seconds(10));
    EXPECT_TRUE(r.status.exited && r.status.code != 0) << value << ": " << r.status.ToString();
    EXPECT_THAT(r.output, HasSubstr("--node-retention-s: must be 0 or from 3 x --lease-s"))
        << r.output;
  }
}

using CliEnvTest = BlackboxTest;

// Every flag can also come from SKED_*: listen, db, time scale and callback secret
// given only through the environment still make a working, time-scaled server.
TEST_F(CliEnvTest, ServesWithConfigurationFromEnvironment) {
  StartServer({.config_from_env = true});
  json::object t = CreateTask(TaskBody("fizz"));
  std::string id = Str(t, "id");
  json::object done = WaitForState(id, "succeeded");
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "Fizz " + id);
  // With SKED_TIME_SCALE=0.01 the 3 s wait is 30 ms, far below the unscaled 3 s.
  EXPECT_LT(TimeField(done, "finished_at") - TimeField(done, "started_at"), milliseconds(2500));
}

}  // namespace
}  // namespace sked::blackbox
