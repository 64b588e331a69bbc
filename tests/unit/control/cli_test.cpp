// vane-control's client views: the status table, watch's progress line and
// its event follower, fed with the controller's JSON answers.
#include "control/cli.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace json = boost::json;
using vane::control::canary_watch;

namespace {

json::object status(const std::string& phase, int weight, json::array events, std::string transition = "t0") {
  return {{"name", "podinfo"},
          {"namespace", "test"},
          {"phase", phase},
          {"canary_weight", weight},
          {"failed_checks", 1},
          {"threshold", 5},
          {"iterations", 0},
          {"last_transition", transition},
          {"metrics", json::object{{"request-success-rate", 99.5}, {"request-duration", 12.34}, {"errors", 3}}},
          {"unreachable_proxies", json::array{}},
          {"events", std::move(events)}};
}

}  // namespace

TEST(ControlCli, ProgressLineShowsWeightBarSuccessRateAndP99) {
  EXPECT_EQ(vane::control::progress_line(status("Progressing", 30, {})),
            "podinfo.test  Progressing      [######--------------]  30%  success 99.50%  p99 12.3ms  errors 3.00"
            "  failed 1/5");
  auto s = status("Failed", 0, {});
  s["metrics"] = json::object{};
  s["unreachable_proxies"] = json::array{"http://10.0.0.1:9901"};
  EXPECT_EQ(vane::control::progress_line(s),
            "podinfo.test  Failed           [--------------------]   0%  failed 1/5  unreachable 1");
  // An odd answer (a weight with a fraction, a huge count) is shown, never a C++ terminate.
  auto odd = status("Progressing", 0, {});
  odd["canary_weight"] = 12.5;
  odd["failed_checks"] = 1e300;
  EXPECT_NE(vane::control::progress_line(odd).find(" 12%"), std::string::npos) << vane::control::progress_line(odd);
}

TEST(ControlCli, StatusTableHasOneRowPerCanary) {
  json::value all = json::object{
      {"canaries", json::array{status("Progressing", 100, {"a", "last one"}), status("Succeeded", 0, {})}}};
  std::string table = vane::control::status_table(all);
  EXPECT_EQ(table.substr(0, table.find('\n')).find("NAME"), 0U);
  EXPECT_NE(table.find("[####################]  100%  1/5"), std::string::npos) << table;
  EXPECT_NE(table.find("last one\n"), std::string::npos) << table;
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 3);
}

TEST(ControlCli, StatusTableShowsTheWatchdogAndWhyReadingsAreMissing) {
  auto running = status("Progressing", 20, {"a"});
  running["last_tick_seconds_ago"] = 0.4;
  running["stalled"] = false;
  auto stuck = status("Progressing", 20, {"b"});
  stuck["name"] = "stuck";
  stuck["last_tick_seconds_ago"] = 42.7;
  stuck["stalled"] = true;
  stuck["reason"] = "errors: prometheus: not JSON (syntax error): <html>";
  std::string table = vane::control::status_table(json::object{{"canaries", json::array{running, stuck}}});
  EXPECT_NE(table.find("TICK"), std::string::npos) << table;
  EXPECT_NE(table.find("0s ago"), std::string::npos) << table;
  EXPECT_NE(table.find("stalled 43s"), std::string::npos) << table;
  EXPECT_NE(table.find("    readings missing: errors: prometheus: not JSON (syntax error): <html>\n"),
            std::string::npos)
      << table;
  // Answers of another shape are shown as far as they go, never thrown on.
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 4);
  for (const auto& odd :
       {json::value(nullptr), json::value(json::array{1, 2}), json::value(json::object{{"canaries", "x"}}),
        json::value(json::object{{"canaries", json::array{1, nullptr}}})}) {
    std::string only_header = vane::control::status_table(odd);
    EXPECT_EQ(std::count(only_header.begin(), only_header.end(), '\n'), 1) << only_header;
  }
}

TEST(ControlCli, WatchPrintsEachEventOnceAndEndsAfterARun) {
  canary_watch w;
  // The previous run's Succeeded does not end the watch, and its events are not shown.
  auto s0 = status("Succeeded", 0, {"e1", "e2"});
  EXPECT_TRUE(w.new_events(s0).empty());
  EXPECT_FALSE(w.finished(s0));
  EXPECT_TRUE(w.new_events(s0).empty());
  auto s1 = status("Progressing", 10, {"e1", "e2", "e3"}, "t1");
  EXPECT_EQ(w.new_events(s1), (std::vector<std::string>{"e3"}));
  EXPECT_FALSE(w.finished(s1));
  // The window of recent events slid: only what follows the last shown one.
  auto s2 = status("Failed", 0, {"e3", "e4", "e5"}, "t2");
  EXPECT_EQ(w.new_events(s2), (std::vector<std::string>{"e4", "e5"}));
  EXPECT_TRUE(w.finished(s2));
}

TEST(ControlCli, WatchEndsOnARunThatStartedAndEndedBetweenTwoPolls) {
  canary_watch w;
  EXPECT_FALSE(w.finished(status("Failed", 0, {}, "t0")));
  EXPECT_FALSE(w.finished(status("Failed", 0, {}, "t0")));
  EXPECT_TRUE(w.finished(status("Succeeded", 0, {}, "t1")));
  // A last shown event that left the window: everything is new.
  canary_watch v;
  EXPECT_EQ(v.new_events(status("Progressing", 10, {"x"})), (std::vector<std::string>{"x"}));  // a run in progress
  EXPECT_EQ(v.new_events(status("Progressing", 10, {"y", "z"})), (std::vector<std::string>{"y", "z"}));
}
