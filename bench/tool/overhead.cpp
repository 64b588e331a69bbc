#include "bench/tool/overhead.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/tool/load.hpp"
#include "common/address.hpp"

namespace vane::bench {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// A child process whose output goes to a log file; stopped (SIGTERM, then SIGKILL) on destruction.
class child {
 public:
  child(const std::string& exe, const std::vector<std::string>& args, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
      std::vector<char*> argv{const_cast<char*>(exe.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(exe.c_str(), argv.data());
      _exit(127);
    }
  }
  ~child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {  // up to 5 s, polled
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  pid_t pid() const { return pid_; }

  // The first "ADDRESS" after `needle` in the log, within 30 s; throws with the log otherwise.
  std::string wait_address(const std::string& needle) {
    for (int i = 0; i < 3000; ++i) {
      std::ifstream in(log_);
      std::string line;
      while (std::getline(in, line)) {
        auto at = line.find(needle);
        if (at == std::string::npos) continue;
        std::string rest = line.substr(at + needle.size());
        return rest.substr(0, rest.find(' '));
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ifstream in(log_);
    std::stringstream all;
    all << in.rdbuf();
    throw std::runtime_error("no '" + needle + "' from the child; its output:\n" + all.str());
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// CPU seconds (user + system) a process has used, from /proc.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {  // field 3 is the state; 14 utime, 15 stime
    if (i == 14) utime = std::stod(f);
    if (i == 15) stime = std::stod(f);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string find_proxy(const std::string& given) {
  if (!given.empty()) return given;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  for (const auto& candidate :
       {self.parent_path().parent_path() / "proxy" / "vane-proxy", self.parent_path() / "vane-proxy"})
    if (!ec && fs::exists(candidate)) return candidate.string();
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    for (std::string d; std::getline(dirs, d, ':');)
      if (fs::exists(fs::path(d) / "vane-proxy")) return (fs::path(d) / "vane-proxy").string();
  }
  throw std::runtime_error("vane-proxy not found next to vane-bench nor in PATH; give --proxy");
}

struct target_request {
  std::string host_header;  // empty: the address
  std::string path = "/";
};

// The user's config on loopback: listeners and admin on ports the OS picks,
// every cluster's endpoints replaced by the upstream, no drain delay. Returns
// what a request must carry to match the first route.
target_request rewrite_config(const std::string& in, const std::string& out, const std::string& upstream) {
  YAML::Node root = YAML::LoadFile(in);
  if (!root["listeners"] || !root["listeners"].IsSequence() || root["listeners"].size() == 0)
    throw std::runtime_error(in + ": no listeners");
  YAML::Node admin = root["admin"] ? root["admin"] : YAML::Node(YAML::NodeType::Map);
  admin["address"] = "127.0.0.1:0";
  admin.remove("token_file");
  root["admin"] = admin;
  root["drain_delay"] = "0s";
  for (auto l : root["listeners"]) l["address"] = "127.0.0.1:0";
  if (root["clusters"])
    for (auto c : root["clusters"]) {
      YAML::Node eps(YAML::NodeType::Sequence);
      eps.push_back(upstream);
      c["endpoints"] = eps;
    }
  target_request t;
  YAML::Node first = root["listeners"][0]["routes"] ? YAML::Node(root["listeners"][0]["routes"][0]) : YAML::Node();
  if (first && first["match"]) {
    YAML::Node m = first["match"];
    if (m["host"]) {
      auto h = m["host"].as<std::string>();
      t.host_header = h.starts_with("*.") ? "bench" + h.substr(1) : h;
    }
    if (m["path_exact"])
      t.path = m["path_exact"].as<std::string>();
    else if (m["path_prefix"])
      t.path = m["path_prefix"].as<std::string>();
  }
  std::ofstream o(out);
  o << root << "\n";
  if (!o) throw std::runtime_error("cannot write " + out);
  return t;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct cell {  // one rate: per round
  std::vector<double> direct_p50, direct_p99, proxied_p50, proxied_p99, cpu_us, achieved;
  std::uint64_t errors = 0;
};

}  // namespace

int run_overhead(const overhead_options& o) {
  auto work = fs::temp_directory_path() / fmt::format("vane-bench-{}", getpid());
  fs::create_directories(work);
  std::string self = fs::read_symlink("/proc/self/exe").string();
  std::unique_ptr<child> upstream;
  std::string upstream_address;
  if (o.upstream.empty()) {
    upstream = std::make_unique<child>(self, std::vector<std::string>{"upstream", "--listen", "127.0.0.1:0"},
                                       (work / "upstream.log").string());
    upstream_address = upstream->wait_address("listening on ");
  } else {
    auto u = parse_http_url(o.upstream);
    if (!u) throw std::runtime_error("--upstream must be http://IP:PORT");
    upstream_address = u->host + ":" + u->port;
  }
  auto config = (work / "vane.yaml").string();
  auto t = rewrite_config(o.config, config, upstream_address);
  std::string proxy_bin = find_proxy(o.proxy);
  child proxy(proxy_bin, {"--config", config, "--workers", std::to_string(o.workers)}, (work / "proxy.log").string());
  std::string proxy_address = proxy.wait_address("listening on ");
  std::fprintf(stderr, "vane-bench overhead: upstream %s, vane-proxy %s (%u worker) on %s; %s%s\n",
               upstream_address.c_str(), proxy_bin.c_str(), o.workers, proxy_address.c_str(),
               t.host_header.empty() ? "" : ("Host " + t.host_header + " ").c_str(), t.path.c_str());

  auto options_for = [&](const std::string& address, double rate) {
    auto hp = parse_host_port(address);
    if (!hp) throw std::runtime_error("bad address " + address);
    load_options l;
    l.host = hp->host;
    l.port = hp->port;
    l.target = t.path;
    l.host_header = t.host_header;
    l.rate = rate;
    l.duration = o.duration;
    l.connections = o.connections;
    return l;
  };
  std::vector<cell> cells(o.rates.size());
  for (unsigned round = 1; round <= o.rounds; ++round) {
    for (std::size_t i = 0; i < o.rates.size(); ++i) {
      // Direct then through the proxy, back to back: both see the same machine load.
      auto direct = run_load(options_for(upstream_address, o.rates[i]));
      double cpu_before = cpu_seconds(proxy.pid());
      auto proxied = run_load(options_for(proxy_address, o.rates[i]));
      double cpu = cpu_seconds(proxy.pid()) - cpu_before;
      auto& c = cells[i];
      c.direct_p50.push_back(quantile_ns(direct.latency_ns, 0.5) / 1e3);
      c.direct_p99.push_back(quantile_ns(direct.latency_ns, 0.99) / 1e3);
      c.proxied_p50.push_back(quantile_ns(proxied.latency_ns, 0.5) / 1e3);
      c.proxied_p99.push_back(quantile_ns(proxied.latency_ns, 0.99) / 1e3);
      c.cpu_us.push_back(proxied.completed ? cpu / static_cast<double>(proxied.completed) * 1e6 : 0);
      c.achieved.push_back(proxied.achieved_rate());
      c.errors += direct.errors.total() + proxied.errors.total();
      std::fprintf(stderr,
                   "  round %u/%u  %8.0f req/s  direct p50 %7.1fus p99 %8.1fus | proxied p50 %7.1fus p99 %8.1fus  cpu "
                   "%.1fus/req\n",
                   round, o.rounds, o.rates[i], c.direct_p50.back(), c.direct_p99.back(), c.proxied_p50.back(),
                   c.proxied_p99.back(), c.cpu_us.back());
    }
  }
  std::printf("%10s  %12s %12s  %12s %12s  %12s %12s  %14s  %s\n", "rate", "direct p50", "direct p99", "proxied p50",
              "proxied p99", "added p50", "added p99", "proxy CPU/req", "errors");
  json::array rows;
  for (std::size_t i = 0; i < o.rates.size(); ++i) {
    const auto& c = cells[i];
    double dp50 = median(c.direct_p50), dp99 = median(c.direct_p99), pp50 = median(c.proxied_p50),
           pp99 = median(c.proxied_p99), cpu = median(c.cpu_us);
    std::printf("%10.0f  %10.1fus %10.1fus  %10.1fus %10.1fus  %10.1fus %10.1fus  %12.1fus  %llu\n", o.rates[i], dp50,
                dp99, pp50, pp99, pp50 - dp50, pp99 - dp99, cpu, static_cast<unsigned long long>(c.errors));
    rows.push_back({{"rate", o.rates[i]},
                    {"achieved_rate", median(c.achieved)},
                    {"direct_p50_us", dp50},
                    {"direct_p99_us", dp99},
                    {"proxied_p50_us", pp50},
                    {"proxied_p99_us", pp99},
                    {"added_p50_us", pp50 - dp50},
                    {"added_p99_us", pp99 - dp99},
                    {"proxy_cpu_us_per_request", cpu},
                    {"errors", c.errors}});
  }
  std::printf(
      "(medians over %u rounds of %.0fs each, direct and proxied interleaved; latency from each request's due time)\n",
      o.rounds, std::chrono::duration<double>(o.duration).count());
  if (!o.json_file.empty()) {
    std::ofstream out(o.json_file);
    out << json::serialize(json::object{
               {"config", o.config}, {"rounds", o.rounds}, {"connections", o.connections}, {"rates", std::move(rows)}})
        << "\n";
  }
  if (!o.plot_file.empty()) {
    auto data = (work / "plot.dat").string();
    {
      std::ofstream d(data);
      for (std::size_t i = 0; i < o.rates.size(); ++i)
        d << o.rates[i] << " " << median(cells[i].direct_p50) << " " << median(cells[i].direct_p99) << " "
          << median(cells[i].proxied_p50) << " " << median(cells[i].proxied_p99) << "\n";
    }
    auto script = (work / "plot.gp").string();
    {
      std::ofstream g(script);
      g << "set terminal pngcairo size 900,500\nset output '" << o.plot_file << "'\n"
        << "set title 'latency direct vs through vane-proxy (" << o.config << ")'\n"
        << "set xlabel 'rate (req/s)'\nset ylabel 'latency (us)'\nset logscale y\nset key left top\nset grid\n"
        << "plot '" << data << "' using 1:2 with linespoints title 'direct p50', '' using 1:3 with linespoints title "
        << "'direct p99', '' using 1:4 with linespoints title 'vane-proxy p50', '' using 1:5 with linespoints title "
        << "'vane-proxy p99'\n";
    }
    int rc = std::system(("gnuplot " + script + " 2>&1").c_str());
    if (rc != 0)
      std::fprintf(stderr, "vane-bench: gnuplot failed (is gnuplot-nox installed?); data in %s\n", data.c_str());
    else
      std::fprintf(stderr, "vane-bench: plot written to %s\n", o.plot_file.c_str());
  }
  std::error_code ec;
  if (o.plot_file.empty()) fs::remove_all(work, ec);
  return 0;
}

}  // namespace vane::bench
