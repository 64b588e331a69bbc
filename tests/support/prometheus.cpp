#include "tests/support/prometheus.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>

#include "common/address.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/http_client.hpp"

namespace vane::test {

namespace json = boost::json;

std::vector<sample> parse_metrics(const std::string& text) {
  std::vector<sample> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.empty() || line.front() == '#') continue;
    sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::size_t eq = line.find('=', i);
        std::string key(line.substr(i, eq - i));
        i = eq + 2;  // past ="
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        ++i;  // closing quote
        if (i < line.size() && line[i] == ',') ++i;
        s.labels[key] = value;
      }
      ++i;  // }
    }
    std::string value(line.substr(i + 1));
    s.value = value == "+Inf" ? HUGE_VAL : std::strtod(value.c_str(), nullptr);
    out.push_back(std::move(s));
  }
  return out;
}

double metric_sum(const std::vector<sample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match) {
  double sum = 0;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      all = all && it != s.labels.end() && it->second == v;
    }
    if (all) sum += s.value;
  }
  return sum;
}

std::string promtool_check(const std::string& text, bool& ok) {
  std::string dir = make_temp_dir();
  write_file(dir + "/metrics.txt", text);
  std::string cmd = "promtool check metrics < " + dir + "/metrics.txt > " + dir + "/out.txt 2>&1";
  int rc = std::system(cmd.c_str());
  ok = rc == 0;
  std::string complaints = read_text_file(dir + "/out.txt");
  std::filesystem::remove_all(dir);
  return complaints;
}

prometheus_server::prometheus_server(const std::vector<std::string>& targets, const std::string& interval) {
  dir_ = make_temp_dir();
  std::string list;
  for (const auto& t : targets) list += (list.empty() ? "'" : ", '") + t + "'";
  write_file(dir_ + "/prometheus.yml", "global:\n  scrape_interval: " + interval +
                                           "\n  evaluation_interval: " + interval +
                                           "\nscrape_configs:\n  - job_name: vane\n    static_configs:\n"
                                           "      - targets: [" +
                                           list + "]\n");
  port_ = unused_port();
  process_ = std::make_unique<child_process>(
      "/usr/bin/prometheus",
      std::vector<std::string>{"--config.file=" + dir_ + "/prometheus.yml", "--storage.tsdb.path=" + dir_ + "/data",
                               "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                               "--storage.tsdb.retention.time=1h", "--log.level=warn"});
  // Ready when its API answers (no fixed sleep; the log level hides the ready line).
  bool up = eventually(
      [&] {
        try {
          return fetch(port_, "GET", "/-/ready").status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(60));
  if (!up) ADD_FAILURE() << "prometheus did not start: " << process_->output();
}

prometheus_server::~prometheus_server() {
  process_.reset();
  std::filesystem::remove_all(dir_);
}

json::value prometheus_server::query(const std::string& promql) const {
  std::string target = "/api/v1/query?query=" + percent_encode(promql);
  auto r = fetch(port_, "GET", target);
  if (r.status != 200) {
    ADD_FAILURE() << "query " << promql << ": " << r.status << " " << r.body;
    return nullptr;
  }
  auto v = json::parse(r.body);
  return v.at("data");
}

std::optional<double> prometheus_server::query_value(const std::string& promql) const {
  auto data = query(promql);
  if (!data.is_object()) return std::nullopt;
  const auto& result = data.at("result");
  const json::array* pair = nullptr;
  if (result.is_array()) {
    if (result.as_array().empty()) return std::nullopt;
    pair = &result.as_array()[0].at("value").as_array();
  } else {
    pair = &result.as_array();
  }
  return std::strtod(std::string((*pair)[1].as_string()).c_str(), nullptr);
}

}  // namespace vane::test
