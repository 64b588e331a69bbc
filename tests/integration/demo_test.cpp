// The main job's live demo (scripts/demo.sh), run as a user runs it: the
// split, then a healthy revision promoted and a failing one rolled back with
// the progress lines, then a gRPC canary failing with HTTP 200 rolled back;
// and Ctrl-C in the middle leaves no process behind.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>

#include "tests/support/fixtures.hpp"

using namespace vane::test;
using namespace std::chrono_literals;

namespace {

std::string build_dir() { return std::filesystem::path(proxy_binary()).parent_path().parent_path().string(); }

std::unique_ptr<child_process> start_demo_script(const std::string& requests) {
  return std::make_unique<child_process>(
      "/bin/bash", std::vector<std::string>{source_dir() + "/scripts/demo.sh", build_dir(), requests},
      /*own_group=*/true);
}

}  // namespace

TEST(Demo, SplitsThenPromotesAHealthyRevisionAndRollsBackAFailingOne) {
  auto demo = start_demo_script("200");
  auto code = demo->wait_exit(300s);
  std::string out = demo->output();
  ASSERT_TRUE(code) << out;
  ASSERT_EQ(*code, 0) << out;
  auto at = [&](const std::string& s) { return out.find(s); };
  // Part 1: the 90/10 split of 200 requests, exact over each window of 100.
  EXPECT_NE(at("version 6.0.0    180 requests   90.0%"), std::string::npos) << out;
  EXPECT_NE(at("version 6.1.0     20 requests   10.0%"), std::string::npos) << out;
  // Part 2: the event lines and progress lines of both runs, in order.
  auto promoted = at("Promotion completed! Scaling down podinfo.demo");
  auto failed = at("Canary failed! Scaling down podinfo.demo");
  ASSERT_NE(promoted, std::string::npos) << out;
  ASSERT_NE(failed, std::string::npos) << out;
  EXPECT_LT(promoted, failed);
  EXPECT_LT(at("Advance podinfo.demo canary weight 60"), promoted);
  EXPECT_NE(at("podinfo.demo  Progressing      [####----------------]  20%"), std::string::npos) << out;
  EXPECT_NE(at("success 100.00%"), std::string::npos) << out;
  EXPECT_NE(out.find("Halt podinfo.demo advancement success rate", promoted), std::string::npos) << out;
  EXPECT_NE(at(R"(demo: the primary now runs "version":"6.1.0")"), std::string::npos)
      << out;  // the promote command ran
  EXPECT_NE(at("6.1.0 promoted, 6.2.0 rolled back"), std::string::npos) << out;
  // The load during the rollouts: only the failing canary's injected 503s, no other error.
  EXPECT_NE(at("version 6.2.0  status 503"), std::string::npos) << out;
  for (const char* bad : {"6.0.0  status 5", "6.1.0  status 5", "status 000", "status 502", "status 504"})
    EXPECT_EQ(at(bad), std::string::npos) << bad << "\n" << out;
  // Part 3: a gRPC canary failing with HTTP 200 + INTERNAL is rolled back; the proxy's metrics show only
  // HTTP 200s while the gRPC statuses were not all OK.
  auto grpc_failed = out.find("Canary failed! Scaling down echo.demo", failed);
  ASSERT_NE(grpc_failed, std::string::npos) << out;
  EXPECT_NE(out.find("Halt echo.demo advancement success rate", failed), std::string::npos) << out;
  EXPECT_NE(at("7.1.0 rolled back on its gRPC errors"), std::string::npos) << out;
  auto http_line = at("HTTP status of the calls through the proxy: 200 x ");
  ASSERT_NE(http_line, std::string::npos) << out;
  EXPECT_EQ(out.substr(http_line, out.find('\n', http_line) - http_line).find(','), std::string::npos)
      << out;  // one HTTP status only
  EXPECT_NE(at("gRPC status of the same calls:"), std::string::npos) << out;
  EXPECT_NE(at("INTERNAL x "), std::string::npos) << out;
  EXPECT_EQ(at("demo: FAILED"), std::string::npos) << out;
  EXPECT_NE(at("demo: done"), std::string::npos) << out;
  // Everything it started is gone.
  EXPECT_TRUE(eventually([&] { return processes_in_group(demo->pid()).empty(); }));
}

TEST(Demo, CtrlCStopsEverythingItStarted) {
  auto demo = start_demo_script("50");
  ASSERT_TRUE(demo->wait_for("demo: rollout of 6.1.0", 120s)) << demo->output();
  ASSERT_GE(processes_in_group(demo->pid()).size(), 5U);  // two demos, the proxy, the controller, the load, watch
  demo->signal_group(SIGINT);                             // what a terminal's Ctrl-C does: the whole foreground group
  auto code = demo->wait_exit(60s);
  ASSERT_TRUE(code) << demo->output();
  EXPECT_EQ(*code, 130) << demo->output();
  EXPECT_NE(demo->output().find("demo: interrupted"), std::string::npos) << demo->output();
  EXPECT_TRUE(eventually([&] { return processes_in_group(demo->pid()).empty(); })) << demo->output();
}
