// The dashboard in a real browser: Debian's Chromium, headless, loads `/`,
// runs the page's script (which lists tasks through the API) and dumps the
// DOM it built. scripts/install-deps.sh --test installs chromium, so a
// missing browser fails the test.
#include <gmock/gmock.h>

#include <filesystem>
#include <string>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using ::testing::HasSubstr;

constexpr char kChromium[] = "/usr/bin/chromium";

class DashboardTest : public BlackboxTest {
 protected:
  // The DOM after the page's script ran (virtual time lets its fetch finish).
  std::string RenderedDom(const std::string& url) {
    char tmpl[] = "/tmp/sked-chromium-XXXXXX";
    const std::string profile = mkdtemp(tmpl);
    CommandResult r = RunCommand({kChromium, "--headless", "--no-sandbox", "--disable-gpu",
                                  "--no-first-run", "--user-data-dir=" + profile,
                                  "--virtual-time-budget=5000", "--dump-dom", url},
                                 seconds(60));
    std::filesystem::remove_all(profile);
    EXPECT_TRUE(r.status.exited && r.status.code == 0) << r.output;
    return r.output;
  }
};

TEST_F(DashboardTest, ABrowserShowsTheTasksWithTheirStateRunnerAndOutput) {
  ASSERT_TRUE(std::filesystem::exists(kChromium)) << "chromium is not installed";
  StartServer();
  const std::string done = Str(CreateTask(TaskBody("foo")), "id");
  WaitForState(done, "succeeded", seconds(10));
  const std::string later =
      Str(CreateTask(TaskBody("noop", {{"run_at", "2100-01-01T00:00:00Z"}})), "id");

  const std::string dom = RenderedDom(server().base_url() + "/");
  // One row per task, built by the page's script from GET /v1/tasks.
  EXPECT_THAT(dom, HasSubstr("<tr data-id=\"" + done + "\">"));
  EXPECT_THAT(dom, HasSubstr("<tr data-id=\"" + later + "\">"));
  EXPECT_THAT(dom, HasSubstr("<td class=\"state succeeded\">succeeded</td>"));
  EXPECT_THAT(dom, HasSubstr("<td class=\"state scheduled\">scheduled</td>"));
  EXPECT_THAT(dom, HasSubstr("<td>Foo " + done + "</td>")) << "the output column";
  EXPECT_THAT(dom, HasSubstr("<td>builtin</td>")) << "the runner column";
  // A live task can be cancelled from its row; a finished one only deleted.
  EXPECT_THAT(dom, HasSubstr(">Cancel</button>"));
  EXPECT_THAT(dom, HasSubstr("<div id=\"msg\"></div>")) << "the page reported an error";
}

TEST_F(DashboardTest, ABrowserWithoutTheApiTokenIsToldWhy) {
  ASSERT_TRUE(std::filesystem::exists(kChromium)) << "chromium is not installed";
  StartServer({.api_tokens = {"dashboard-secret-token"}});
  const std::string dom = RenderedDom(server().base_url() + "/");
  // The page itself is open; its API call is refused, and the page says so.
  EXPECT_THAT(dom, HasSubstr("<div id=\"msg\">unauthenticated"));
}

}  // namespace
}  // namespace sked::blackbox
