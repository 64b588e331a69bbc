// vane-control: the canary analysis controller (Flagger's semantics, no
// mesh), and its command-line client.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "common/log.hpp"
#include "common/yaml_doc.hpp"
#include "control/controller.hpp"
#include "control/http_client.hpp"

namespace {

constexpr const char* usage = R"(usage: vane-control --canaries DIR [--listen 127.0.0.1:9902] [--state FILE]
                    [--proxy-token-file FILE] [--log-level LEVEL]
       vane-control status [NAME] | rollout NAME [--revision R] | promote NAME
                    | abort NAME | resume NAME   [--server URL] [--json]

The controller loads Flagger Canary, MetricTemplate and AlertProvider
documents (flagger.app/v1beta1) from DIR, follows changes to them, and runs
each Canary's analysis against its vane-proxy fleet (spec.proxies): it moves
the route's weights with PUT /routes/NAME/traffic, reads /stats/latency,
calls webhooks and alerts, and promotes or rolls back. Events are printed one
per line, in Flagger's words. See docs/control.md.

  --canaries DIR           the documents (*.yaml, *.yml; several per file)
  --listen ADDR            its HTTP API and /metrics (default 127.0.0.1:9902)
  --state FILE             phase, weight, failed checks... of every canary,
                           written atomically; a restarted controller resumes
  --proxy-token-file FILE  bearer token for the proxies' admin API

Commands (a client of a running controller, --server default
http://127.0.0.1:9902):
  status [NAME] [--json]   a table: phase, weight, failed checks, iterations,
                           last event (--json: the API's answer)
  rollout NAME [--revision R]   start a run (a new revision, or the same again)
  promote NAME             confirm the promotion gate, or tell it the primary
                           now runs the new revision (without spec.promote)
  abort NAME               roll back now
  resume NAME              run a Failed canary's revision again
)";

int fail_usage(const std::string& message) {
  std::fprintf(stderr, "vane-control: %s\n\n%s", message.c_str(), usage);
  return 2;
}

// `status` as a table: name, phase, weight with a bar, failed checks, iterations, last event.
void print_table(const boost::json::value& answer) {
  namespace json = boost::json;
  std::vector<const json::object*> rows;
  if (const auto* all = answer.as_object().if_contains("canaries"))
    for (const auto& c : all->as_array()) rows.push_back(&c.as_object());
  else
    rows.push_back(&answer.as_object());
  std::printf("%-24s %-17s %-29s %-7s %-6s %s\n", "NAME", "PHASE", "WEIGHT", "FAILED", "ITER", "LAST EVENT");
  for (const auto* c : rows) {
    auto weight = c->at("canary_weight").to_number<std::int64_t>();
    std::string bar = "[" + std::string(static_cast<std::size_t>(weight / 5), '#') +
                      std::string(static_cast<std::size_t>(20 - weight / 5), '-') + "]";
    std::string name = std::string(c->at("name").as_string()) + "." + std::string(c->at("namespace").as_string());
    std::string failed = std::to_string(c->at("failed_checks").to_number<std::int64_t>()) + "/" +
                         std::to_string(c->at("threshold").to_number<std::int64_t>());
    const auto& events = c->at("events").as_array();
    std::string last = events.empty() ? "" : std::string(events.back().as_string());
    std::printf("%-24s %-17s %s %4lld%%  %-7s %-6lld %s\n", name.c_str(), std::string(c->at("phase").as_string()).c_str(),
                bar.c_str(), static_cast<long long>(weight), failed.c_str(),
                static_cast<long long>(c->at("iterations").to_number<std::int64_t>()), last.c_str());
  }
}

int client(int argc, char** argv) {
  std::string cmd = argv[1];
  std::string name, revision, server = "http://127.0.0.1:9902";
  bool as_json = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") as_json = true;
    else if (a == "--server" && i + 1 < argc) server = argv[++i];
    else if (a == "--revision" && i + 1 < argc) revision = argv[++i];
    else if (name.empty() && !a.starts_with("--")) name = a;
    else return fail_usage("unexpected argument '" + a + "'");
  }
  if (cmd != "status" && name.empty()) return fail_usage(cmd + " needs a canary NAME");
  auto url = vane::control::parse_http_url(server);
  if (!url) return fail_usage("--server must be http://HOST:PORT");
  std::string method = cmd == "status" ? "GET" : "POST";
  std::string target = cmd == "status" ? (name.empty() ? "/canaries" : "/canaries/" + name) : "/canaries/" + name + "/" + cmd;
  std::string body = revision.empty() ? "" : boost::json::serialize(boost::json::object{{"revision", revision}});
  boost::asio::io_context ctx;
  std::vector<std::pair<std::string, std::string>> headers;
  vane::duration timeout = std::chrono::seconds(10);
  auto fut = boost::asio::co_spawn(
      ctx, vane::control::http_call(ctx.get_executor(), *url, method, target, body, timeout, headers),
      boost::asio::use_future);
  ctx.run();
  auto r = fut.get();
  if (r.status == 0) {
    std::fprintf(stderr, "vane-control: %s\n", r.error.c_str());
    return 1;
  }
  if (r.status >= 300) {
    std::fputs(r.body.c_str(), stderr);
    return 1;
  }
  boost::system::error_code ec;
  auto answer = boost::json::parse(r.body, ec);
  if (as_json || ec || !answer.is_object()) std::fputs(r.body.c_str(), stdout);
  else print_table(answer);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    std::string first = argv[1];
    if (first == "status" || first == "rollout" || first == "promote" || first == "abort" || first == "resume")
      return client(argc, argv);
  }
  vane::control::controller_options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::puts("vane-control 0.1.0");
      return 0;
    } else if (arg == "--canaries") {
      auto v = value();
      if (!v) return fail_usage("--canaries needs a directory");
      options.canaries_dir = v;
    } else if (arg == "--listen") {
      auto v = value();
      if (!v) return fail_usage("--listen needs HOST:PORT");
      options.listen = v;
    } else if (arg == "--state") {
      auto v = value();
      if (!v) return fail_usage("--state needs a file");
      options.state_file = v;
    } else if (arg == "--proxy-token-file") {
      auto v = value();
      if (!v) return fail_usage("--proxy-token-file needs a file");
      std::string message;
      auto text = vane::read_file(v, message);
      if (!text) return fail_usage(message);
      while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back()))) text->pop_back();
      options.proxy_token = *text;
    } else if (arg == "--log-level") {
      auto v = value();
      vane::log::level level;
      if (!v || !vane::log::parse_level(v, level)) return fail_usage("--log-level needs debug, info, warn or error");
      vane::log::set_level(level);
    } else {
      return fail_usage("unknown argument '" + arg + "'");
    }
  }
  if (options.canaries_dir.empty()) return fail_usage("--canaries is required");
  std::signal(SIGPIPE, SIG_IGN);
  try {
    vane::control::controller c(options);
    c.start();
    return c.run();
  } catch (const std::exception& e) {
    vane::log::error("{}", e.what());
    return 1;
  }
}
