#include "tests/support/fixtures.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/support/http_client.hpp"

namespace vane::test {

std::string proxy_binary() { return VANE_PROXY_BIN; }
std::string demo_binary() { return VANE_DEMO_BIN; }
std::string control_binary() { return VANE_CONTROL_BIN; }
std::string bench_binary() { return VANE_BENCH_BIN; }
std::string source_dir() { return VANE_SOURCE_DIR; }

std::uint16_t port_of_line(const std::string& line) {
  auto colon = line.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("no port in: " + line);
  return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

boost::json::object demo_instance::stats() const { return fetch_json(port, "/_demo/stats").as_object(); }

void demo_instance::configure(const std::string& json) {
  auto r = fetch(port, "PUT", "/_demo/config", {{"content-type", "application/json"}}, json);
  if (r.status != 200) throw std::runtime_error("demo config refused: " + r.body);
}

demo_instance start_demo(const std::string& version, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"--listen", "127.0.0.1:0", "--version", version};
  args.insert(args.end(), extra.begin(), extra.end());
  demo_instance d;
  d.process = std::make_unique<child_process>(demo_binary(), args);
  auto line = d.process->wait_for(" listening on ");
  if (!line) throw std::runtime_error("vane-demo did not start: " + d.process->output());
  d.port = port_of_line(*line);
  return d;
}

std::string make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "vane-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string with_test_defaults(const std::string& yaml) {
  std::string out = yaml;
  if (out.find("admin:") == std::string::npos) out = "admin: {address: 127.0.0.1:0}\n" + out;
  if (out.find("drain_delay:") == std::string::npos) out = "drain_delay: 0s\n" + out;
  return out;
}

proxy_instance start_proxy_file(const std::string& path, int workers, const std::vector<std::string>& extra) {
  proxy_instance p;
  p.config_path = path;
  std::vector<std::string> args{"--config", p.config_path, "--workers", std::to_string(workers)};
  args.insert(args.end(), extra.begin(), extra.end());
  p.process = std::make_unique<child_process>(proxy_binary(), args);
  auto line = p.process->wait_for(" listening on ");
  if (!line) throw std::runtime_error("vane-proxy did not start: " + p.process->output());
  auto paren = line->find(" (");
  p.port = port_of_line(line->substr(0, paren));
  auto admin = p.process->wait_for("admin listening on ");
  if (!admin) throw std::runtime_error("vane-proxy admin did not start: " + p.process->output());
  p.admin_port = port_of_line(admin->substr(0, admin->find(" (")));
  return p;
}

proxy_instance start_proxy(const std::string& yaml, int workers, const std::vector<std::string>& extra) {
  std::string path = make_temp_dir() + "/vane.yaml";
  write_file(path, with_test_defaults(yaml));
  return start_proxy_file(path, workers, extra);
}

std::uint16_t unused_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed on return: connecting to it is refused
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size())
    text.replace(pos, from.size(), to);
  return text;
}

std::uint64_t peak_rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

std::string weighted_split_config(const std::string& primary, const std::string& canary, int primary_weight,
                                  int canary_weight, const std::string& route_extra,
                                  const std::string& primary_protocol, const std::string& canary_protocol) {
  auto protocol = [](const std::string& p) { return p.empty() ? std::string() : "protocol: " + p + ", "; };
  return R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        split:
          - {cluster: app-primary, weight: )" +
         std::to_string(primary_weight) + R"(}
          - {cluster: app-canary, weight: )" +
         std::to_string(canary_weight) + "}\n" + route_extra +
         R"(
clusters:
  - {name: app-primary, )" +
         protocol(primary_protocol) + "endpoints: [" + primary + R"(]}
  - {name: app-canary, )" +
         protocol(canary_protocol) + "endpoints: [" + canary + "]}\n";
}

std::string half_split_config(const std::string& primary, const std::string& canary, const std::string& route_extra,
                              const std::string& primary_protocol, const std::string& canary_protocol) {
  return weighted_split_config(primary, canary, 50, 50, route_extra, primary_protocol, canary_protocol);
}

std::string canary_proxy_config(const demo_instance& p, const demo_instance& c) {
  return weighted_split_config(p.address(), c.address(), 100, 0);
}

double metric_now(const proxy_instance& p, const std::string& line_prefix) {
  std::string text = fetch(p.admin_port, "GET", "/metrics").body;
  auto at = text.find(line_prefix + " ");
  return at == std::string::npos ? 0 : std::stod(text.substr(at + line_prefix.size() + 1));
}

double metric(const proxy_instance& p, const std::string& line_prefix, double expected) {
  double v = 0;
  eventually([&] { return (v = metric_now(p, line_prefix)) >= expected; }, std::chrono::seconds(10));
  return v;
}

}  // namespace vane::test
