#pragma once
// `vane-bench overhead`: the latency vane-proxy adds to a user's config, and
// its CPU per request, measured against the same upstream reached directly.
#include <chrono>
#include <string>
#include <vector>

namespace vane::bench {

struct overhead_options {
  std::string config;     // the user's vane-proxy config
  std::string proxy;      // vane-proxy binary (default: next to vane-bench, then PATH)
  std::string upstream;   // http://IP:PORT of the user's upstream (default: the built-in one)
  std::string json_file;  // results as JSON
  std::string plot_file;  // a PNG drawn by gnuplot
  std::vector<double> rates{1000, 5000, 20000};
  std::chrono::nanoseconds duration = std::chrono::seconds(5);
  unsigned rounds = 3;
  unsigned connections = 16;
  unsigned workers = 1;
};

int run_overhead(const overhead_options& options);

}  // namespace vane::bench
