// vane-control: the canary analysis controller (Flagger's semantics, no
// mesh), and its command-line client.
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "common/http_client.hpp"
#include "common/log.hpp"
#include "common/units.hpp"
#include "common/yaml_doc.hpp"
#include "control/cli.hpp"
#include "control/controller.hpp"
#include "control/inject_manifests.hpp"
#include "control/inject_webhook.hpp"
#include "control/k8s_mode.hpp"
#include "control/phase.hpp"

namespace {

constexpr const char* usage = R"(usage: vane-control --canaries DIR [--listen 127.0.0.1:9902] [--state FILE]
                    [--proxy-token-file FILE] [--log-level LEVEL] [--validate]
                    [--inject-webhook ADDR --tls-cert FILE --tls-key FILE]
       vane-control --kubernetes [--kubeconfig FILE] [--namespace NS] [--listen ADDR]
                    [--proxy-token-file FILE] [--log-level LEVEL]
                    [--inject-webhook ADDR --tls-cert FILE --tls-key FILE]
       vane-control inject [-f FILE|-] [--all] [--classic-sidecar]
       vane-control status [NAME] [--json] | watch NAME [--timeout D]
                    | rollout NAME [--revision R] | promote NAME | abort NAME
                    | resume NAME                 [--server URL]

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
  --kubernetes             read the Canaries (spec.provider: vane), MetricTemplates
                           and AlertProviders from the Kubernetes API instead of
                           DIR, and do the cluster's side as Flagger: <target>-primary,
                           config copies, Services, HPA copy; a change of the
                           target's pod template or its ConfigMaps/Secrets is a new
                           revision; promotion copies the template to the primary;
                           status and Events on the Canary (docs/kubernetes.md)
  --kubeconfig FILE        with --kubernetes, outside a pod: the API server and
                           credentials of FILE's current context (in a pod: the
                           service account)
  --namespace NS           with --kubernetes: only this namespace (default: all)
  --validate               check DIR's documents and exit: 0, or 1 with every
                           error as FILE:LINE:COL: message
  --inject-webhook ADDR    also serve the mutating admission webhook that
                           injects the vane-proxy sidecar (HTTPS, POST /inject
                           with an AdmissionReview v1, GET /ready); alone when
                           --canaries is not given. It injects every pod it is
                           sent but those labelled vane.dev/inject: disabled:
                           the MutatingWebhookConfiguration's selectors choose
                           (k8s/overlays/inject-webhook)
  --tls-cert FILE, --tls-key FILE
                           its certificate chain and key (PEM), read again when
                           they change (a renewed Secret)
  --classic-sidecar        inject a plain container instead of a native sidecar

  inject                   add the vane-proxy sidecar to manifests (see
                           vane-control inject --help)

Commands (a client of a running controller, --server default
http://127.0.0.1:9902):
  status [NAME] [--json]   a table: phase, weight, failed checks, iterations,
                           last tick ("stalled" past 3 intervals), last event,
                           and why readings are missing (--json: the API's answer)
  watch NAME [--timeout D] [--interval 500ms]
                           follow a run: its event lines as they come and a
                           progress line (weight bar, success rate, p99,
                           failed checks) until it ends; exit 0 promoted,
                           3 rolled back, 4 timed out, 1 no controller
  rollout NAME [--revision R]   start a run (a new revision, or the same again)
  promote NAME             confirm the promotion gate, or tell it the primary
                           now runs the new revision (without spec.promote)
  abort NAME               roll back now
  resume NAME              run a Failed canary's revision again
)";

constexpr const char* inject_usage = R"(usage: vane-control inject [-f FILE|-] [--all] [--classic-sidecar]

Reads Kubernetes manifests (YAML, several documents) and writes them to
stdout with the vane-proxy sidecar added to every pod template that opts in:
labelled vane.dev/inject: enabled, or in a Namespace of the same input
labelled so. Kinds: Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
CronJob, and the items of a List. The sidecar is the container of
k8s/base/proxy (a native sidecar: an init container with restartPolicy:
Always, Kubernetes 1.29+), its volumes (the proxy config from the ConfigMap
named by the pod annotation vane.dev/proxy-config, default
vane-proxy-config; the admin token from the Secret vane-admin-token), the
Prometheus scrape annotations and the label vane.dev/fleet.

Injecting twice changes nothing. Other documents are written back as they
were, byte for byte; an injected one is written again from its parsed form,
so its comments are lost (but those above it). What was done to each pod
template is printed on stderr. Bad input: every error as FILE:LINE:COL on
stderr, exit 1, nothing written.

  -f FILE, --filename FILE  the manifests (default -, standard input)
  --all                     every pod template not labelled vane.dev/inject: disabled
  --classic-sidecar         a plain container instead (clusters before 1.29; the
                            app must retry its first calls until the proxy listens)
)";

int fail_usage(const std::string& message) {
  std::fprintf(stderr, "vane-control: %s\n\n%s", message.c_str(), usage);
  return 2;
}

// One call to the controller's API; status 0 and the error when nothing answered.
vane::http_result call(const vane::http_url& url, const std::string& method, const std::string& target,
                       const std::string& body) {
  boost::asio::io_context ctx;
  std::vector<std::pair<std::string, std::string>> headers;
  vane::duration timeout = std::chrono::seconds(10);
  auto fut = boost::asio::co_spawn(
      ctx, vane::http_call(ctx.get_executor(), url, method, target, body, timeout, headers), boost::asio::use_future);
  ctx.run();
  return fut.get();
}

// `watch NAME`: the run's event lines as they come and a progress line (redrawn
// in place on a terminal, printed when phase, weight or failed checks change
// otherwise), until the run ends: 0 promoted, 3 rolled back, 4 --timeout.
int watch(const vane::http_url& url, const std::string& name, vane::duration interval,
          std::optional<vane::duration> timeout) {
  namespace json = boost::json;
  const bool tty = isatty(STDOUT_FILENO) != 0;
  const auto deadline =
      timeout ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point::max();
  vane::control::canary_watch w;
  std::string shown_key;
  bool progress_on_screen = false, warned = false, answered_once = false;
  for (;;) {
    auto r = call(url, "GET", "/canaries/" + name, "");
    if (r.status == 0 || r.status >= 300) {
      std::string why = r.status == 0 ? r.error : r.body;
      if (!answered_once) {
        std::fprintf(stderr, "vane-control: %s\n", why.c_str());
        return 1;
      }
      if (!warned) std::fprintf(stderr, "\nvane-control: controller not answering (%s); still trying\n", why.c_str());
      warned = true;
    } else {
      answered_once = true;
      warned = false;
      boost::system::error_code ec;
      auto answer = json::parse(r.body, ec);
      if (ec || !answer.is_object()) {
        std::fprintf(stderr, "vane-control: not a status: %s\n", r.body.c_str());
        return 1;
      }
      const auto& status = answer.as_object();
      auto events = w.new_events(status);
      std::string line = vane::control::progress_line(status);
      if (tty) {
        if (progress_on_screen) std::fputs("\r\033[K", stdout);
        for (const auto& e : events) std::printf("%s\n", e.c_str());
        std::printf("%s", line.c_str());
        progress_on_screen = true;
      } else {
        for (const auto& e : events) std::printf("%s\n", e.c_str());
        auto key = vane::control::progress_key(status);
        if (key != shown_key || !events.empty()) std::printf("%s\n", line.c_str());
        shown_key = key;
      }
      std::fflush(stdout);
      if (w.finished(status)) {
        if (tty) std::fputs("\n", stdout);
        const auto* phase = status.if_contains("phase");
        bool promoted = phase && phase->is_string() &&
                        vane::control::phase_from_name(phase->get_string()) == vane::control::canary_phase::succeeded;
        return promoted ? 0 : 3;
      }
    }
    if (std::chrono::steady_clock::now() + interval > deadline) {
      if (progress_on_screen) std::fputs("\n", stdout);
      std::fprintf(stderr, "vane-control: %s: the run did not end within --timeout\n", name.c_str());
      return 4;
    }
    std::this_thread::sleep_for(interval);
  }
}

// --validate: every document of DIR parsed as the controller would; each error as FILE:LINE:COL.
int validate(const std::string& dir) {
  std::error_code ec;
  auto texts = vane::control::read_document_files(dir, ec);
  if (ec) {
    std::fprintf(stderr, "vane-control: --canaries %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  vane::control::documents docs;
  for (const auto& [path, text] : texts) vane::control::parse_documents(text, path, docs);
  for (const auto& e : docs.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
  std::set<std::string> seen;
  std::size_t twice = 0;
  for (const auto& spec : docs.canaries)
    if (!seen.insert(spec.id()).second) {
      std::fprintf(stderr, "%s:%d: Canary %s is defined twice\n", spec.file.c_str(), static_cast<int>(spec.line),
                   spec.id().c_str());
      ++twice;
    }
  for (const auto& i : docs.ignored) std::printf("%s\n", i.c_str());
  if (!docs.errors.empty() || twice > 0) return 1;
  std::printf("%s: %zu Canary, %zu MetricTemplate, %zu AlertProvider documents OK\n", dir.c_str(), docs.canaries.size(),
              docs.templates.size(), docs.providers.size());
  return 0;
}

// `inject`: manifests from a file or stdin to stdout, with the sidecar.
int inject(int argc, char** argv) {
  std::string file = "-";
  vane::control::inject_options options;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(inject_usage, stdout);
      return 0;
    } else if ((a == "-f" || a == "--filename") && i + 1 < argc) {
      file = argv[++i];
    } else if (a == "--all") {
      options.all = true;
    } else if (a == "--classic-sidecar") {
      options.classic_sidecar = true;
    } else {
      std::fprintf(stderr, "vane-control inject: unexpected argument '%s'\n\n%s", a.c_str(), inject_usage);
      return 2;
    }
  }
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::string message;
    auto t = vane::read_file(file, message);
    if (!t) {
      std::fprintf(stderr, "vane-control inject: %s\n", message.c_str());
      return 1;
    }
    text = std::move(*t);
  }
  auto r = vane::control::inject_manifests(text, file == "-" ? "<stdin>" : file, options);
  for (const auto& n : r.notes) std::fprintf(stderr, "%s\n", n.c_str());
  for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
  if (!r.errors.empty()) return 1;
  std::fwrite(r.text.data(), 1, r.text.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

// --inject-webhook without --canaries: the webhook alone, until SIGTERM/SIGINT.
int serve_webhook_alone(const vane::control::inject_webhook_options& options) {
  boost::asio::io_context ctx(1);
  vane::control::inject_webhook w(ctx.get_executor(), options);
  w.start();
  boost::asio::signal_set signals(ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    vane::log::info("signal {}: stopping", sig);
    ctx.stop();
  });
  ctx.run();
  return 0;
}

int client(int argc, char** argv) {
  std::string cmd = argv[1];
  std::string name, revision, server = "http://127.0.0.1:9902";
  bool as_json = false;
  vane::duration interval = std::chrono::milliseconds(500);
  std::optional<vane::duration> timeout;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json")
      as_json = true;
    else if (a == "--server" && i + 1 < argc)
      server = argv[++i];
    else if (a == "--revision" && i + 1 < argc)
      revision = argv[++i];
    else if ((a == "--timeout" || a == "--interval") && cmd == "watch" && i + 1 < argc) {
      auto d = vane::parse_duration(argv[++i]);
      if (!d || d->count() <= 0) return fail_usage(a + " needs a duration such as 500ms or 10m");
      (a == "--timeout" ? timeout : interval) = *d;
    } else if (name.empty() && !a.starts_with("--"))
      name = a;
    else
      return fail_usage("unexpected argument '" + a + "'");
  }
  if (cmd != "status" && name.empty()) return fail_usage(cmd + " needs a canary NAME");
  auto url = vane::parse_http_url(server);
  if (!url) return fail_usage("--server must be http://HOST:PORT");
  if (cmd == "watch") return watch(*url, name, interval, timeout);
  std::string method = cmd == "status" ? "GET" : "POST";
  std::string target =
      cmd == "status" ? (name.empty() ? "/canaries" : "/canaries/" + name) : "/canaries/" + name + "/" + cmd;
  std::string body = revision.empty() ? "" : boost::json::serialize(boost::json::object{{"revision", revision}});
  auto r = call(*url, method, target, body);
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
  if (as_json || ec || !answer.is_object())
    std::fputs(r.body.c_str(), stdout);
  else
    std::fputs(vane::control::status_table(answer).c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    std::string first = argv[1];
    if (first == "inject") return inject(argc, argv);
    if (first == "status" || first == "watch" || first == "rollout" || first == "promote" || first == "abort" ||
        first == "resume")
      return client(argc, argv);
  }
  vane::control::controller_options options;
  vane::control::inject_webhook_options webhook;
  vane::control::kubernetes_options kubernetes;
  bool validate_only = false, kubernetes_mode = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::puts("vane-control 0.1.0");
      return 0;
    } else if (arg == "--validate") {
      validate_only = true;
    } else if (arg == "--kubernetes") {
      kubernetes_mode = true;
    } else if (arg == "--kubeconfig" || arg == "--namespace") {
      auto v = value();
      if (!v) return fail_usage(arg + (arg == "--kubeconfig" ? " needs a file" : " needs a namespace"));
      (arg == "--kubeconfig" ? kubernetes.kubeconfig : kubernetes.namespace_name) = v;
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
    } else if (arg == "--inject-webhook" || arg == "--tls-cert" || arg == "--tls-key") {
      auto v = value();
      if (!v) return fail_usage(arg + (arg == "--inject-webhook" ? " needs HOST:PORT" : " needs a file"));
      (arg == "--inject-webhook" ? webhook.address
       : arg == "--tls-cert"     ? webhook.certificate
                                 : webhook.private_key) = v;
    } else if (arg == "--classic-sidecar") {
      webhook.inject.classic_sidecar = true;
    } else if (arg == "--log-level") {
      auto v = value();
      vane::log::level level;
      if (!v || !vane::log::parse_level(v, level)) return fail_usage("--log-level needs debug, info, warn or error");
      vane::log::set_level(level);
    } else {
      return fail_usage("unknown argument '" + arg + "'");
    }
  }
  if (kubernetes_mode) {
    if (!options.canaries_dir.empty() || validate_only || !options.state_file.empty())
      return fail_usage("--kubernetes reads the API server: not with --canaries, --validate or --state");
    if (!webhook.address.empty()) {
      if (webhook.certificate.empty() || webhook.private_key.empty())
        return fail_usage("--inject-webhook needs --tls-cert and --tls-key");
      kubernetes.webhook = webhook;
    }
    std::signal(SIGPIPE, SIG_IGN);
    try {
      return vane::control::run_kubernetes(options, kubernetes);
    } catch (const std::exception& e) {
      vane::log::error("{}", e.what());
      return 1;
    }
  }
  if (!kubernetes.kubeconfig.empty() || !kubernetes.namespace_name.empty())
    return fail_usage("--kubeconfig and --namespace are for --kubernetes");
  const bool serve_webhook = !webhook.address.empty();
  if (serve_webhook && (webhook.certificate.empty() || webhook.private_key.empty()))
    return fail_usage("--inject-webhook needs --tls-cert and --tls-key (the API server calls webhooks over HTTPS)");
  if (!serve_webhook && (!webhook.certificate.empty() || !webhook.private_key.empty()))
    return fail_usage("--tls-cert and --tls-key are for --inject-webhook");
  if (options.canaries_dir.empty() && !serve_webhook) return fail_usage("--canaries is required");
  if (validate_only) {
    if (options.canaries_dir.empty()) return fail_usage("--validate needs --canaries");
    return validate(options.canaries_dir);
  }
  std::signal(SIGPIPE, SIG_IGN);
  try {
    if (options.canaries_dir.empty()) return serve_webhook_alone(webhook);
    vane::control::controller c(options);
    c.start();
    std::optional<vane::control::inject_webhook> w;
    if (serve_webhook) {
      w.emplace(c.executor(), webhook);
      w->start();
    }
    return c.run();
  } catch (const std::exception& e) {
    vane::log::error("{}", e.what());
    return 1;
  }
}
