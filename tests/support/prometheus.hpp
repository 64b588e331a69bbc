#pragma once
// Reading what vane-proxy exposes, as Prometheus would: parsing the text
// format, running `promtool check metrics` on a scrape, and a real
// `prometheus` server (Debian package) on 127.0.0.1 for PromQL checks.
#include <boost/json/value.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace vane::test {

struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses the samples of a text-format exposition (comments skipped).
std::vector<sample> parse_metrics(const std::string& text);
// Sum of the samples named `name` whose labels include all of `match`.
double metric_sum(const std::vector<sample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match = {});
// Runs `promtool check metrics` on the text; returns its complaints ("" when none) and sets `ok`.
std::string promtool_check(const std::string& text, bool& ok);

class prometheus_server {
 public:
  // Starts prometheus scraping `targets` (host:port, path /metrics) every `interval`.
  prometheus_server(const std::vector<std::string>& targets, const std::string& interval = "1s");
  ~prometheus_server();
  // GET /api/v1/query?query=Q: the "data" object of a successful answer.
  boost::json::value query(const std::string& promql) const;
  // The single value of an instant-vector or scalar answer; nullopt when empty.
  std::optional<double> query_value(const std::string& promql) const;
  std::uint16_t port() const { return port_; }

 private:
  std::string dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<child_process> process_;
};

}  // namespace vane::test
