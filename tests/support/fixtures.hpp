#pragma once
// Starting the real binaries for integration and end-to-end tests.
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.hpp"

namespace vane::test {

std::string proxy_binary();
std::string demo_binary();
std::string control_binary();
std::string bench_binary();
std::string source_dir();

struct demo_instance {
  std::unique_ptr<child_process> process;
  std::uint16_t port = 0;
  boost::json::object stats() const;        // GET /_demo/stats
  void configure(const std::string& json);  // PUT /_demo/config, expects 200
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};
demo_instance start_demo(const std::string& version, const std::vector<std::string>& extra = {});

struct proxy_instance {
  std::unique_ptr<child_process> process;
  std::uint16_t port = 0;        // of the first listener
  std::uint16_t admin_port = 0;  // of the admin API
  std::string config_path;
};
// Writes `yaml` to a temp file and starts vane-proxy on it; waits until it listens.
// Unless the yaml says otherwise, the admin API listens on a port the OS picks
// and drain_delay is 0s (so that stopping a test's proxy takes no time).
proxy_instance start_proxy(const std::string& yaml, int workers = 1, const std::vector<std::string>& extra = {});
// Starts vane-proxy on an existing config file (used as is).
proxy_instance start_proxy_file(const std::string& path, int workers = 1, const std::vector<std::string>& extra = {});
// Adds the test defaults above to a config text.
std::string with_test_defaults(const std::string& yaml);

std::string make_temp_dir();
void write_file(const std::string& path, const std::string& content);
std::string read_text_file(const std::string& path);
// A loopback port that nothing listens on (bound by the OS, then released).
std::uint16_t unused_port();
// Replaces every occurrence of `from` in `text` with `to`.
std::string replace_all(std::string text, const std::string& from, const std::string& to);
// The number after the last ':' in a "... listening on HOST:PORT" line.
std::uint16_t port_of_line(const std::string& line);
// Peak resident memory of a process (VmHWM), in KiB.
std::uint64_t peak_rss_kib(int pid);

// Polls a condition until it holds or a generous deadline passes: the only
// way tests wait (never a fixed sleep). Returns the condition's last value.
template <class F>
bool eventually(F condition, std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the polling interval
  }
  return condition();
}

// A proxy config with one listener (port 0) and route `app` splitting 50/50
// between app-primary and app-canary at these addresses; `route_extra` is
// YAML added to the route (indented 8 spaces).
// `*_protocol`: the clusters' `protocol:` (empty: not written, HTTP/1.1).
std::string half_split_config(const std::string& primary, const std::string& canary, const std::string& route_extra,
                              const std::string& primary_protocol = "", const std::string& canary_protocol = "");
// The same with the weights given.
std::string weighted_split_config(const std::string& primary, const std::string& canary, int primary_weight,
                                  int canary_weight, const std::string& route_extra = "",
                                  const std::string& primary_protocol = "", const std::string& canary_protocol = "");

// Route `app` sending everything to app-primary (`p`) and nothing yet to app-canary (`c`): where
// vane-control starts a canary run from.
std::string canary_proxy_config(const demo_instance& p, const demo_instance& c);

// A sample of the proxy's /metrics by its line up to the value ("name{labels}"): its value now (0 when
// absent), or once it reaches `expected` (a request is counted just after its last byte went to the
// client, so a client may look a moment too early); the last value seen when it never does.
double metric_now(const proxy_instance& p, const std::string& line_prefix);
double metric(const proxy_instance& p, const std::string& line_prefix, double expected);

}  // namespace vane::test
