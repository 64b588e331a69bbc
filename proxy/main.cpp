// vane-proxy: the data plane. Thin: parse flags, load and validate the config,
// build the route table, run the workers until SIGTERM/SIGINT.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#ifdef VANE_WITH_MIMALLOC
#include <mimalloc.h>
#endif

#include "common/log.hpp"
#include "proxy/config_load.hpp"
#include "proxy/cpus.hpp"
#include "proxy/runtime.hpp"

namespace {

constexpr const char* usage = R"(usage: vane-proxy --config FILE [--workers N] [--validate] [--log-level LEVEL]
                  [--access-log FILE]

vane-proxy is a reverse proxy for HTTP/1.1, HTTP/2 (h2 over TLS, h2c) and
gRPC that splits traffic between the primary and canary clusters of a service.

  --config FILE      the YAML config (see docs/configuration.md)
  --workers N        worker threads, each with its own event loop, listening
                     sockets (SO_REUSEPORT) and upstream pools; default: the
                     cores this process may use (its CPU affinity, and no
                     more than its cgroup's CPU quota, rounded up: a 500m
                     limit gives 1), at most 256
  --validate         check the config and exit: 0 when it is valid, 1 with
                     every error printed as FILE:LINE:COL: message
  --log-level LEVEL  debug, info (default), warn or error
  --access-log FILE  one JSON line per request (time, route, cluster, status,
                     duration_ms, bytes_received, bytes_sent, upstream,
                     request_id, method, path) appended to FILE, or to stdout
                     with "-"; off by default. Written by a thread of its own:
                     when it falls behind, lines are dropped and counted in
                     vane_access_log_dropped_total, requests never wait
  --help             this text
  --version          the version

Signals: SIGTERM and SIGINT drain (/ready turns 503, accept for drain_delay
with Connection: close, then let in-flight requests finish within
drain_timeout, exit 0); a second one exits at once. SIGHUP reloads the config;
so does any change of the file (including a ConfigMap's ..data symlink swap).
SIGUSR1 opens the access log file again (after logrotate moved it).
A bad new config is refused with its errors logged; the old one stays.

TLS (docs/tls.md): listeners with tls: {certificate, private_key} (or
certificates chosen by SNI) terminate TLS 1.2/1.3; clusters with tls: {sni, ca}
speak verified TLS upstream. Certificate, key and CA files are re-read every
second: a changed set is used for new connections (open ones keep theirs); a
set that does not load is refused with a log line and the loaded one stays.
Relative paths in the config are read from the config file's directory.

Logs: "listener NAME listening on ADDRESS" once each listener accepts, and
"admin listening on ADDRESS" for the admin API (GET /ready, /metrics,
/stats/latency, /config, /clusters, /routes/NAME; PUT/DELETE
/routes/NAME/traffic; POST /drain).
)";

int fail_usage(const std::string& message) {
  std::fprintf(stderr, "vane-proxy: %s\n\n%s", message.c_str(), usage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::size_t workers = std::min<std::size_t>(vane::proxy::usable_cpus(), 256);
  bool validate_only = false;
  std::string access_log;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)flag;
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::puts("vane-proxy 0.1.0");
      return 0;
    } else if (arg == "--config") {
      auto v = value("--config");
      if (!v) return fail_usage("--config needs a file");
      config_path = v;
    } else if (arg == "--workers") {
      auto v = value("--workers");
      char* end = nullptr;
      long n = v ? std::strtol(v, &end, 10) : 0;
      if (!v || *end != '\0' || n < 1 || n > 256) return fail_usage("--workers needs a number from 1 to 256");
      workers = static_cast<std::size_t>(n);
    } else if (arg == "--access-log") {
      auto v = value("--access-log");
      if (!v || !*v) return fail_usage("--access-log needs a file, or - for stdout");
      access_log = v;
    } else if (arg == "--validate") {
      validate_only = true;
    } else if (arg == "--log-level") {
      auto v = value("--log-level");
      vane::log::level level;
      if (!v || !vane::log::parse_level(v, level)) return fail_usage("--log-level needs debug, info, warn or error");
      vane::log::set_level(level);
    } else {
      return fail_usage("unknown argument '" + arg + "'");
    }
  }
  if (config_path.empty()) return fail_usage("--config is required");

  std::vector<vane::config_error> errors;
  auto config = vane::proxy::load_proxy_config(config_path, errors);
  if (!config) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "vane-proxy: %s: %zu error%s, config refused\n", config_path.c_str(), errors.size(),
                 errors.size() == 1 ? "" : "s");
    return 1;
  }
  if (validate_only) {
    std::printf("%s: valid (%zu listeners, %zu clusters)\n", config_path.c_str(), config->listeners.size(),
                config->clusters.size());
    return 0;
  }

  std::signal(SIGPIPE, SIG_IGN);
#ifdef VANE_WITH_MIMALLOC
  const int mi = mi_version();  // e.g. 209 for 2.0.9
  vane::log::info("memory allocator: mimalloc {}.{}.{}", mi / 100, mi / 10 % 10, mi % 10);
#endif
  try {
    vane::proxy::runtime rt(config_path, std::move(*config), workers, access_log);
    rt.start();
    return rt.run();
  } catch (const std::exception& e) {
    vane::log::error("{}", e.what());
    return 1;
  }
}
