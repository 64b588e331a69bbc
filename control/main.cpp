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
#include "control/k8s_session.hpp"
#include "control/leader_election.hpp"
#include "control/phase.hpp"

namespace {

constexpr const char* usage = R"(usage: vane-control --canaries DIR [--listen 127.0.0.1:9902] [--state FILE]
                    [--proxy-token-file FILE] [--log-level LEVEL] [--validate]
                    [--inject-webhook ADDR --tls-cert FILE --tls-key FILE]
                    [--kubeconfig FILE] [--leader-elect [--leader-election-namespace NS]
                     [--leader-election-id NAME] [--leader-elect-lease-duration 15s]
                     [--leader-elect-renew-deadline 10s] [--leader-elect-retry-period 2s]]
       vane-control --kubernetes [--kubeconfig FILE] [--namespace NS] [--listen ADDR]
                    [--proxy-token-file FILE] [--log-level LEVEL] [--leader-elect ...]
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
  --kubeconfig FILE        the Kubernetes API's credentials (its current
                           context); without it, the pod's service account
                           when in a pod. Needed by spec.proxies entries
                           k8s:NAMESPACE/SERVICE:PORT, --leader-elect and
                           --kubernetes
  --leader-elect           act only while holding the coordination.k8s.io/v1
                           Lease NS/NAME (client-go's algorithm); a standby
                           serves /ready (false) and /metrics. Exits 1 when
                           the Lease cannot be renewed; releases it on SIGTERM
  --leader-election-namespace NS   the Lease's (default: the pod's or the
                           kubeconfig context's namespace)
  --leader-election-id NAME        the Lease's name (default vane-control-leader)
  --leader-elect-lease-duration D, --leader-elect-renew-deadline D,
  --leader-elect-retry-period D    15s, 10s, 2s (controller-runtime's)

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
  // A controller that stops answering mid-run (a restart, a failover) is waited for this long, then exit 1.
  constexpr auto give_up_after = std::chrono::seconds(60);
  std::chrono::steady_clock::time_point failing_since{};
  for (;;) {
    auto r = call(url, "GET", "/canaries/" + name, "");
    if (r.status == 0 || r.status >= 300) {
      std::string why = r.status == 0 ? r.error : r.body;
      // No answer at first, or an answer that is no status (the canary is gone: 404): nothing to follow.
      if (!answered_once || (r.status >= 400 && r.status < 500)) {
        if (progress_on_screen) std::fputs("\n", stdout);
        std::fprintf(stderr, "vane-control: %s\n", why.c_str());
        return 1;
      }
      const auto now = std::chrono::steady_clock::now();
      if (!warned) {
        std::fprintf(stderr, "\nvane-control: controller not answering (%s); still trying\n", why.c_str());
        failing_since = now;
      }
      warned = true;
      if (now - failing_since > give_up_after) {
        std::fprintf(stderr, "vane-control: controller not answering for %llds: giving up\n",
                     static_cast<long long>(give_up_after.count()));
        return 1;
      }
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

// The Kubernetes API's credentials into options.kubernetes: from --kubeconfig
// (it must load), else in a pod from the service account (when it does not
// load, k8s: proxies are refused, with the reason logged). --leader-elect needs
// them. 0, or the exit code.
int kubernetes_credentials(const vane::control::k8s_session_options& session, bool leader_elect,
                           vane::control::controller_options& options,
                           vane::control::leader_election_options& election) {
  if (!leader_elect && !vane::control::k8s_credentials_offered(session)) return 0;
  std::string error;
  options.kubernetes = vane::control::k8s_session_config(session, error);
  if (!options.kubernetes) {
    if (leader_elect || !session.kubeconfig.empty()) {
      std::fprintf(stderr, "vane-control: %s%s\n", leader_elect ? "--leader-elect: " : "", error.c_str());
      return 1;
    }
    vane::log::info("{}; spec.proxies k8s: entries will be refused", error);
    return 0;
  }
  if (!leader_elect) return 0;
  if (election.namespace_name.empty()) election.namespace_name = options.kubernetes->namespace_name;
  if (auto why = vane::control::check_leader_election_options(election); !why.empty())
    return fail_usage("--leader-elect: " + why);
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
  vane::control::k8s_session_options session;
  vane::control::leader_election_options election;
  bool validate_only = false, leader_elect = false, kubernetes_mode = false;
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
    } else if (arg == "--namespace") {
      auto v = value();
      if (!v) return fail_usage("--namespace needs a namespace");
      kubernetes.namespace_name = v;
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
    } else if (arg == "--kubeconfig") {
      auto v = value();
      if (!v) return fail_usage("--kubeconfig needs a file");
      session.kubeconfig = v;
    } else if (arg == "--leader-elect") {
      leader_elect = true;
    } else if (arg == "--leader-election-namespace" || arg == "--leader-election-id") {
      auto v = value();
      if (!v || !*v) return fail_usage(arg + (arg == "--leader-election-id" ? " needs a name" : " needs a namespace"));
      (arg == "--leader-election-id" ? election.name : election.namespace_name) = v;
    } else if (arg == "--leader-elect-lease-duration" || arg == "--leader-elect-renew-deadline" ||
               arg == "--leader-elect-retry-period") {
      auto v = value();
      auto d = v ? vane::parse_duration(v) : std::nullopt;
      if (!d || d->count() <= 0) return fail_usage(arg + " needs a duration such as 15s");
      (arg == "--leader-elect-lease-duration"   ? election.lease_duration
       : arg == "--leader-elect-renew-deadline" ? election.renew_deadline
                                                : election.retry_period) = *d;
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
    std::string error;
    options.kubernetes = vane::control::k8s_session_config(session, error);
    if (!options.kubernetes) {
      std::fprintf(stderr, "vane-control: %s\n", error.c_str());
      return 1;
    }
    if (leader_elect) {
      if (election.namespace_name.empty()) election.namespace_name = options.kubernetes->namespace_name;
      if (auto why = vane::control::check_leader_election_options(election); !why.empty())
        return fail_usage("--leader-elect: " + why);
      kubernetes.election = election;
    }
    std::signal(SIGPIPE, SIG_IGN);
    try {
      return vane::control::run_kubernetes(options, kubernetes);
    } catch (const std::exception& e) {
      vane::log::error("{}", e.what());
      return 1;
    }
  }
  if (!kubernetes.namespace_name.empty()) return fail_usage("--namespace is for --kubernetes");
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
  if (leader_elect && options.canaries_dir.empty()) return fail_usage("--leader-elect needs --canaries");
  if (int code = kubernetes_credentials(session, leader_elect, options, election); code != 0) return code;
  std::signal(SIGPIPE, SIG_IGN);
  try {
    if (options.canaries_dir.empty()) return serve_webhook_alone(webhook);
    options.wait_for_leadership = leader_elect;
    vane::control::controller c(options);
    c.start();
    std::unique_ptr<vane::control::leader_election_thread> elector;
    if (leader_elect) {
      elector = std::make_unique<vane::control::leader_election_thread>(*options.kubernetes, election);
      std::string error;
      auto started = [&c] { c.lead(); };
      auto stopped = [&c] {
        vane::log::error("leader election lost: stopping (exit 1), as client-go's controllers do");
        c.stop(1);
      };
      if (!elector->start(started, stopped, error)) {
        vane::log::error("--leader-elect: {}", error);
        return 1;
      }
    }
    std::optional<vane::control::inject_webhook> w;
    if (serve_webhook) {
      w.emplace(c.executor(), webhook);
      w->start();
    }
    int code = c.run();
    if (elector) elector->shutdown();  // the loops are stopped: release the Lease (a standby takes over now)
    return code;
  } catch (const std::exception& e) {
    vane::log::error("{}", e.what());
    return 1;
  }
}
