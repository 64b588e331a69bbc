// k8s/ rendered offline by `kubectl kustomize`, every manifest checked for what
// breaks in production: images pinned by tag, probes, resources, a non-root
// read-only securityContext, labels and selectors that match, named ports that
// exist, volumes whose ConfigMaps/Secrets/claims exist, and the proxy config
// and Canary documents in the ConfigMaps accepted by the real binaries
// (--validate). And the Dockerfile, checked as far as it can be offline.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "tests/support/fixtures.hpp"
#include "tests/support/tls.hpp"

using namespace vane::test;
namespace fs = std::filesystem;

namespace {

std::string which(const std::string& tool) {
  auto [code, out] = run("/bin/sh", {"-c", "command -v " + tool});
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return code == 0 ? out : std::string();
}

struct rendered {
  std::vector<YAML::Node> all;
  std::vector<YAML::Node> of(const std::string& kind) const {
    std::vector<YAML::Node> out;
    for (const auto& d : all)
      if (d["kind"].as<std::string>() == kind) out.push_back(d);
    return out;
  }
  YAML::Node named(const std::string& kind, const std::string& name) const {
    for (const auto& d : of(kind))
      if (d["metadata"]["name"].as<std::string>() == name) return d;
    return YAML::Node();
  }
};

rendered render(const std::string& overlay) {
  auto kubectl = which("kubectl");
  if (kubectl.empty()) return {};
  auto [code, out] = run(kubectl, {"kustomize", source_dir() + "/k8s/" + overlay});
  EXPECT_EQ(code, 0) << out;
  rendered r;
  for (auto& d : YAML::LoadAll(out))
    if (d.IsMap()) r.all.push_back(d);
  return r;
}

std::string name_of(const YAML::Node& d) {
  return d["kind"].as<std::string>() + "/" + d["metadata"]["name"].as<std::string>();
}

std::vector<YAML::Node> containers_of(const YAML::Node& pod_spec) {
  std::vector<YAML::Node> out;
  for (const char* key : {"initContainers", "containers"})
    if (pod_spec[key])
      for (const auto& c : pod_spec[key]) out.push_back(c);
  return out;
}

bool selects(const YAML::Node& selector, const YAML::Node& labels) {
  if (!selector || !selector.IsMap() || selector.size() == 0) return false;
  for (const auto& kv : selector)
    if (!labels[kv.first.as<std::string>()] ||
        labels[kv.first.as<std::string>()].as<std::string>() != kv.second.as<std::string>())
      return false;
  return true;
}

// The Deployments whose pods a selector picks.
std::vector<YAML::Node> pods_selected(const rendered& r, const YAML::Node& selector) {
  std::vector<YAML::Node> out;
  for (const auto& d : r.of("Deployment"))
    if (selects(selector, d["spec"]["template"]["metadata"]["labels"])) out.push_back(d);
  return out;
}

std::set<std::string> port_names(const YAML::Node& deployment) {
  std::set<std::string> out;
  for (const auto& c : containers_of(deployment["spec"]["template"]["spec"]))
    if (c["ports"])
      for (const auto& p : c["ports"]) out.insert(p["name"].as<std::string>());
  return out;
}

std::set<int> port_numbers(const YAML::Node& deployment) {
  std::set<int> out;
  for (const auto& c : containers_of(deployment["spec"]["template"]["spec"]))
    if (c["ports"])
      for (const auto& p : c["ports"]) out.insert(p["containerPort"].as<int>());
  return out;
}

// The value following `flag` in a container's args.
std::string arg_after(const YAML::Node& container, const std::string& flag) {
  const auto& args = container["args"];
  for (std::size_t i = 0; args && i + 1 < args.size(); ++i)
    if (args[i].as<std::string>() == flag) return args[i + 1].as<std::string>();
  return {};
}

// The volume mounted at the directory holding `path` in a container, and the key (file name).
std::pair<YAML::Node, std::string> volume_for(const YAML::Node& deployment, const YAML::Node& container,
                                              const std::string& path) {
  fs::path p(path);
  for (const auto& m : container["volumeMounts"])
    if (m["mountPath"].as<std::string>() == p.parent_path().string())
      for (const auto& v : deployment["spec"]["template"]["spec"]["volumes"])
        if (v["name"].as<std::string>() == m["name"].as<std::string>()) return {v, p.filename().string()};
  return {YAML::Node(), {}};
}

// Everything every overlay must get right.
void check_common(const rendered& r) {
  ASSERT_FALSE(r.all.empty());
  // Created by hand (or by cert-manager): the comment of each overlay says how;
  // or written by a cert-manager Certificate of the same rendering.
  std::set<std::string> user_secrets = {"vane-admin-token", "vane-ingress-tls"};
  for (const auto& c : r.of("Certificate")) user_secrets.insert(c["spec"]["secretName"].as<std::string>());
  for (const auto& d : r.of("Deployment")) {
    SCOPED_TRACE(name_of(d));
    const auto& spec = d["spec"];
    const auto& pod = spec["template"]["spec"];
    EXPECT_TRUE(selects(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"]))
        << "the selector does not match its own pods";
    // No Kubernetes API credentials, but for a pod whose ServiceAccount this rendering grants a role (RBAC).
    if (pod["automountServiceAccountToken"].as<bool>(true)) {
      auto account = pod["serviceAccountName"].as<std::string>("default");
      EXPECT_TRUE(r.named("ServiceAccount", account)) << "API credentials for a ServiceAccount not in the rendering";
      bool bound = false;
      for (const char* kind : {"RoleBinding", "ClusterRoleBinding"})
        for (const auto& b : r.of(kind))
          for (const auto& subject : b["subjects"])
            bound = bound || (subject["kind"].as<std::string>() == "ServiceAccount" &&
                              subject["name"].as<std::string>() == account);
      EXPECT_TRUE(bound) << "API credentials that no role goes with";
    }
    auto containers = containers_of(pod);
    ASSERT_FALSE(containers.empty());
    for (const auto& c : containers) {
      SCOPED_TRACE(c["name"].as<std::string>());
      auto image = c["image"].as<std::string>("");
      auto last = image.substr(image.rfind('/') + 1);
      auto colon = last.find(':');
      ASSERT_NE(colon, std::string::npos) << image << ": not pinned by tag";
      EXPECT_NE(last.substr(colon + 1), "latest") << image;
      EXPECT_TRUE(c["readinessProbe"]) << "no readiness probe";
      EXPECT_TRUE(c["livenessProbe"]) << "no liveness probe";
      for (const char* probe : {"readinessProbe", "livenessProbe", "startupProbe"}) {
        if (!c[probe]) continue;
        auto port = c[probe]["httpGet"] ? c[probe]["httpGet"]["port"] : c[probe]["tcpSocket"]["port"];
        ASSERT_TRUE(port) << probe;
        EXPECT_TRUE(port_names(d).count(port.as<std::string>())) << probe << " names port " << port;
      }
      for (const char* what : {"cpu", "memory"}) EXPECT_TRUE(c["resources"]["requests"][what]) << "requests." << what;
      EXPECT_TRUE(c["resources"]["limits"]["memory"]) << "no memory limit";
      const auto& sc = c["securityContext"];
      EXPECT_TRUE(sc["runAsNonRoot"].as<bool>(false));
      EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>(false));
      EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true));
      EXPECT_EQ(sc["capabilities"]["drop"][0].as<std::string>(""), "ALL");
      if (c["volumeMounts"])
        for (const auto& m : c["volumeMounts"]) {
          bool found = false;
          for (const auto& v : pod["volumes"])
            found = found || v["name"].as<std::string>() == m["name"].as<std::string>();
          EXPECT_TRUE(found) << "mount of a missing volume " << m["name"];
        }
    }
    if (pod["volumes"])
      for (const auto& v : pod["volumes"]) {
        if (v["configMap"]) {
          EXPECT_TRUE(r.named("ConfigMap", v["configMap"]["name"].as<std::string>())) << v;
        }
        if (v["secret"]) {
          EXPECT_TRUE(user_secrets.count(v["secret"]["secretName"].as<std::string>())) << v;
        }
        if (v["persistentVolumeClaim"]) {
          EXPECT_TRUE(r.named("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"].as<std::string>())) << v;
        }
      }
    if (auto a = spec["template"]["metadata"]["annotations"]; a && a["prometheus.io/port"]) {
      EXPECT_TRUE(port_numbers(d).count(std::stoi(a["prometheus.io/port"].as<std::string>()))) << "scrape port";
    }
  }
  for (const auto& s : r.of("Service")) {
    SCOPED_TRACE(name_of(s));
    auto pods = pods_selected(r, s["spec"]["selector"]);
    ASSERT_FALSE(pods.empty()) << "selects no pods";
    for (const auto& p : s["spec"]["ports"])
      for (const auto& d : pods)
        EXPECT_TRUE(port_names(d).count(p["targetPort"].as<std::string>()))
            << name_of(d) << " has no port named " << p["targetPort"];
  }
  for (const auto& h : r.of("HorizontalPodAutoscaler"))
    EXPECT_TRUE(r.named("Deployment", h["spec"]["scaleTargetRef"]["name"].as<std::string>())) << name_of(h);
  for (const auto& p : r.of("PodDisruptionBudget"))
    EXPECT_FALSE(pods_selected(r, p["spec"]["selector"]["matchLabels"]).empty()) << name_of(p);
}

// The Deployment and container that run `binary` (vane-proxy, vane-control); exactly one of each expected.
std::pair<YAML::Node, YAML::Node> running(const rendered& r, const std::string& binary) {
  for (const auto& d : r.of("Deployment"))
    for (const auto& c : containers_of(d["spec"]["template"]["spec"]))
      if (c["args"] && c["args"][0].as<std::string>() == binary) return {d, c};
  return {};
}

// The proxy's config from its ConfigMap, checked against the pods and accepted by `vane-proxy --validate`.
// `generated`: Services that vane-control creates (Kubernetes mode), by name, with their port.
YAML::Node check_proxy(const rendered& r, const YAML::Node& d, const YAML::Node& c,
                       const std::map<std::string, int>& generated = {}) {
  auto config_path = arg_after(c, "--config");
  auto [volume, key] = volume_for(d, c, config_path);
  EXPECT_TRUE(volume["configMap"]) << config_path << " is not in a mounted ConfigMap";
  if (!volume["configMap"]) return {};
  auto cm = r.named("ConfigMap", volume["configMap"]["name"].as<std::string>());
  EXPECT_TRUE(cm["data"][key]) << "the ConfigMap has no key " << key;
  if (!cm["data"][key]) return {};
  std::string text = cm["data"][key].as<std::string>();
  YAML::Node config = YAML::Load(text);
  // The admin token file comes from the Secret's mount.
  auto token_path = config["admin"]["token_file"].as<std::string>();
  auto [token_volume, token_key] = volume_for(d, c, token_path);
  EXPECT_TRUE(token_volume["secret"]) << token_path << " is not in a mounted Secret";
  // Every cluster endpoint is a Service and port of the same rendering.
  for (const auto& cluster : config["clusters"])
    for (const auto& e : cluster["endpoints"]) {
      auto hp = e.as<std::string>();
      if (auto g = generated.find(hp.substr(0, hp.find(':'))); g != generated.end()) {
        EXPECT_EQ(hp.substr(hp.find(':') + 1), std::to_string(g->second)) << hp;
        continue;
      }
      auto svc = r.named("Service", hp.substr(0, hp.find(':')));
      EXPECT_TRUE(svc) << "no Service for endpoint " << hp;
      if (!svc) continue;
      bool port = false;
      for (const auto& p : svc["spec"]["ports"])
        port = port || std::to_string(p["port"].as<int>()) == hp.substr(hp.find(':') + 1);
      EXPECT_TRUE(port) << hp;
    }
  // Termination leaves time to drain.
  auto grace = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as<int>(30);
  EXPECT_GT(grace, 5 + 30) << "drain_delay + drain_timeout";
  // The real binary accepts it (the token file is a stand-in for the Secret's,
  // and throwaway certificates stand in for the TLS Secret's).
  auto dir = make_temp_dir();
  write_file(dir + "/token", "test-token\n");
  text = replace_all(text, token_path, dir + "/token");
  test_pki pki;
  for (const auto& l : config["listeners"]) {
    if (!l["tls"]) continue;
    auto cert_path = l["tls"]["certificate"].as<std::string>();
    auto key_path = l["tls"]["private_key"].as<std::string>();
    for (const auto& path : {cert_path, key_path}) {
      auto [tls_volume, tls_key] = volume_for(d, c, path);
      EXPECT_TRUE(tls_volume["secret"]) << path << " is not in a mounted Secret";
    }
    auto cert = pki.issue("ingress", {"podinfo.example.com"});
    text = replace_all(replace_all(text, cert_path, cert.certificate), key_path, cert.private_key);
  }
  write_file(dir + "/vane.yaml", text);
  auto [code, out] = run(proxy_binary(), {"--validate", "--config", dir + "/vane.yaml"});
  EXPECT_EQ(code, 0) << out;
  return config;
}

// vane-control's Canaries from their ConfigMap: accepted by --validate, naming the proxy's route and a fleet Service.
void check_control(const rendered& r, const YAML::Node& proxy_config) {
  auto [d, c] = running(r, "vane-control");
  ASSERT_TRUE(d) << "no vane-control Deployment";
  EXPECT_EQ(d["spec"]["replicas"].as<int>(), 1);
  EXPECT_EQ(d["spec"]["strategy"]["type"].as<std::string>(), "Recreate");
  auto dir_path = arg_after(c, "--canaries");
  auto [volume, ignored] = volume_for(d, c, dir_path + "/x");
  ASSERT_TRUE(volume["configMap"]) << dir_path;
  auto cm = r.named("ConfigMap", volume["configMap"]["name"].as<std::string>());
  auto state = arg_after(c, "--state");
  auto [state_volume, state_key] = volume_for(d, c, state);
  EXPECT_TRUE(state_volume["persistentVolumeClaim"]) << state << " is not on the claim";
  auto token = arg_after(c, "--proxy-token-file");
  auto [token_volume, token_key] = volume_for(d, c, token);
  EXPECT_TRUE(token_volume["secret"]) << token;
  auto dir = make_temp_dir();
  std::set<std::string> routes;
  for (const auto& l : proxy_config["listeners"])
    for (const auto& rt : l["routes"]) routes.insert(rt["name"].as<std::string>());
  for (const auto& kv : cm["data"]) {
    write_file(dir + "/" + kv.first.as<std::string>(), kv.second.as<std::string>());
    for (const auto& doc : YAML::LoadAll(kv.second.as<std::string>())) {
      if (doc["kind"].as<std::string>("") != "Canary") continue;
      EXPECT_TRUE(routes.count(doc["spec"]["route"].as<std::string>())) << "no proxy route " << doc["spec"]["route"];
      for (const auto& p : doc["spec"]["proxies"]) {
        auto fleet = p.as<std::string>();
        ASSERT_EQ(fleet.rfind("dns:", 0), 0U) << fleet;
        auto name = fleet.substr(4, fleet.rfind(':') - 4);
        auto svc = r.named("Service", name);
        ASSERT_TRUE(svc) << "no fleet Service " << name;
        EXPECT_EQ(svc["spec"]["clusterIP"].as<std::string>(""), "None") << "the fleet Service must be headless";
        // It selects exactly the pods that run the proxy, on its admin port.
        auto [pd, pc] = running(r, "vane-proxy");
        EXPECT_TRUE(selects(svc["spec"]["selector"], pd["spec"]["template"]["metadata"]["labels"]));
        EXPECT_EQ(fleet.substr(fleet.rfind(':') + 1),
                  proxy_config["admin"]["address"].as<std::string>().substr(
                      proxy_config["admin"]["address"].as<std::string>().rfind(':') + 1));
      }
    }
  }
  auto [code, out] = run(control_binary(), {"--validate", "--canaries", dir});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("1 Canary"), std::string::npos) << out;
}

int port_of(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

}  // namespace

TEST(K8s, SidecarOverlayInjectsTheProxyIntoTheCallerAndTheControllerDrivesIt) {
  if (which("kubectl").empty()) GTEST_SKIP() << "kubectl is not installed";
  auto r = render("overlays/sidecar");
  check_common(r);
  auto [d, c] = running(r, "vane-proxy");
  ASSERT_TRUE(d) << "no pod runs vane-proxy";
  EXPECT_EQ(d["metadata"]["name"].as<std::string>(), "frontend") << "the proxy goes into the calling workload";
  // A native sidecar: an init container that keeps running, started (probe) before the app.
  ASSERT_TRUE(d["spec"]["template"]["spec"]["initContainers"]);
  EXPECT_EQ(c["restartPolicy"].as<std::string>(""), "Always");
  EXPECT_TRUE(c["startupProbe"]);
  auto config = check_proxy(r, d, c);
  ASSERT_TRUE(config);
  // The app calls the outbound listener, which only the pod itself can reach.
  auto listener = config["listeners"][0]["address"].as<std::string>();
  EXPECT_EQ(listener, "127.0.0.1:15001");
  bool calls_it = false;
  for (const auto& app : d["spec"]["template"]["spec"]["containers"])
    for (const auto& a : app["command"])
      calls_it = calls_it || a.as<std::string>().find("localhost:15001") != std::string::npos;
  EXPECT_TRUE(calls_it) << "the app does not call its sidecar";
  // The callee's pods carry no proxy: an inbound sidecar could not split.
  for (const char* callee : {"podinfo-primary", "podinfo-canary"})
    EXPECT_FALSE(r.named("Deployment", callee)["spec"]["template"]["spec"]["initContainers"]) << callee;
  check_control(r, config);
}

TEST(K8s, IngressOverlayRunsTheProxyAsAnAutoscaledDeployment) {
  if (which("kubectl").empty()) GTEST_SKIP() << "kubectl is not installed";
  auto r = render("overlays/ingress");
  check_common(r);
  auto [d, c] = running(r, "vane-proxy");
  ASSERT_TRUE(d);
  EXPECT_EQ(d["metadata"]["name"].as<std::string>(), "vane-ingress");
  EXPECT_FALSE(d["spec"]["template"]["spec"]["initContainers"]) << "the proxy is the main container here";
  EXPECT_FALSE(c["restartPolicy"]);
  auto config = check_proxy(r, d, c);
  ASSERT_TRUE(config);
  // The Service's target port is the listener's.
  int listener = port_of(config["listeners"][0]["address"].as<std::string>());
  EXPECT_EQ(config["listeners"][0]["address"].as<std::string>().rfind("0.0.0.0:", 0), 0U);
  auto svc = r.named("Service", "vane-ingress");
  ASSERT_TRUE(svc);
  bool found = false;
  for (const auto& p : c["ports"])
    if (p["name"].as<std::string>() == svc["spec"]["ports"][0]["targetPort"].as<std::string>())
      found = p["containerPort"].as<int>() == listener;
  EXPECT_TRUE(found) << "the Service does not reach the listener on " << listener;
  EXPECT_TRUE(r.named("HorizontalPodAutoscaler", "vane-ingress"));
  EXPECT_TRUE(r.named("PodDisruptionBudget", "vane-ingress"));
  check_control(r, config);
}

TEST(K8s, InjectWebhookOverlayNeverBlocksTheSystemAndServesWithARenewedCertificate) {
  if (which("kubectl").empty()) GTEST_SKIP() << "kubectl is not installed";
  auto r = render("overlays/inject-webhook");
  check_common(r);
  auto [d, c] = running(r, "vane-control");
  ASSERT_TRUE(d) << "no vane-control Deployment";
  const std::string ns = d["metadata"]["namespace"].as<std::string>();
  EXPECT_EQ(d["spec"]["template"]["metadata"]["labels"]["vane.dev/inject"].as<std::string>(""), "disabled")
      << "the injector's own pods are never injected";
  EXPECT_GE(d["spec"]["replicas"].as<int>(1), 2) << "one replica down must not leave pods without the sidecar";
  EXPECT_FALSE(
      pods_selected(r, r.named("PodDisruptionBudget", "vane-inject-webhook")["spec"]["selector"]["matchLabels"])
          .empty());
  // Its TLS files are the Secret that the Certificate writes, for the Service's name.
  auto cert_path = arg_after(c, "--tls-cert");
  auto key_path = arg_after(c, "--tls-key");
  auto [cert_volume, cert_key] = volume_for(d, c, cert_path);
  auto [key_volume, key_key] = volume_for(d, c, key_path);
  ASSERT_TRUE(cert_volume["secret"]) << cert_path << " is not in a mounted Secret";
  EXPECT_EQ(cert_volume["secret"]["secretName"].as<std::string>(),
            key_volume["secret"]["secretName"].as<std::string>());
  EXPECT_EQ(cert_key, "tls.crt");
  EXPECT_EQ(key_key, "tls.key");
  YAML::Node certificate;
  for (const auto& cert : r.of("Certificate"))
    if (cert["spec"]["secretName"].as<std::string>() == cert_volume["secret"]["secretName"].as<std::string>())
      certificate = cert;
  ASSERT_TRUE(certificate) << "no Certificate writes " << cert_volume["secret"]["secretName"];
  EXPECT_TRUE(r.named(certificate["spec"]["issuerRef"]["kind"].as<std::string>("Issuer"),
                      certificate["spec"]["issuerRef"]["name"].as<std::string>()))
      << "the Certificate's issuer is not in the rendering";
  // The MutatingWebhookConfiguration: safe when the injector is down, and pointing at it.
  auto configs = r.of("MutatingWebhookConfiguration");
  ASSERT_EQ(configs.size(), 1U);
  const auto& config = configs[0];
  EXPECT_EQ(config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as<std::string>(""),
            ns + "/" + certificate["metadata"]["name"].as<std::string>())
      << "the CA bundle comes from the Certificate";
  std::set<std::string> opted_in_by;
  for (const auto& w : config["webhooks"]) {
    SCOPED_TRACE(w["name"].as<std::string>());
    EXPECT_EQ(w["failurePolicy"].as<std::string>(""), "Ignore");
    EXPECT_EQ(w["sideEffects"].as<std::string>(""), "None");
    ASSERT_EQ(w["admissionReviewVersions"].size(), 1U);
    EXPECT_EQ(w["admissionReviewVersions"][0].as<std::string>(), "v1");
    EXPECT_LE(w["timeoutSeconds"].as<int>(30), 10);
    const auto& svc_ref = w["clientConfig"]["service"];
    EXPECT_EQ(svc_ref["namespace"].as<std::string>(), ns);
    EXPECT_EQ(svc_ref["path"].as<std::string>(), "/inject");
    auto svc = r.named("Service", svc_ref["name"].as<std::string>());
    ASSERT_TRUE(svc) << "no Service " << svc_ref["name"];
    bool port_ok = false;
    for (const auto& p : svc["spec"]["ports"]) port_ok = port_ok || p["port"].as<int>() == svc_ref["port"].as<int>(443);
    EXPECT_TRUE(port_ok);
    EXPECT_TRUE(selects(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"]));
    bool dns_ok = false;
    for (const auto& n : certificate["spec"]["dnsNames"])
      dns_ok = dns_ok || n.as<std::string>() == svc_ref["name"].as<std::string>() + "." + ns + ".svc";
    EXPECT_TRUE(dns_ok) << "the certificate does not name the Service the API server calls";
    ASSERT_EQ(w["rules"].size(), 1U);
    EXPECT_EQ(w["rules"][0]["resources"][0].as<std::string>(), "pods");
    EXPECT_EQ(w["rules"][0]["operations"][0].as<std::string>(), "CREATE");
    // System namespaces and the injector's own are never sent; a pod labelled disabled never.
    std::set<std::string> excluded;
    bool namespace_opt_in = false, pod_opt_in = false, pod_opt_out = false;
    for (const auto& e : w["namespaceSelector"]["matchExpressions"]) {
      if (e["key"].as<std::string>() == "kubernetes.io/metadata.name" && e["operator"].as<std::string>() == "NotIn")
        for (const auto& v : e["values"]) excluded.insert(v.as<std::string>());
      if (e["key"].as<std::string>() == "vane.dev/inject" && e["operator"].as<std::string>() == "In")
        namespace_opt_in = e["values"][0].as<std::string>() == "enabled";
    }
    for (const char* system : {"kube-system", "kube-public", "kube-node-lease"})
      EXPECT_TRUE(excluded.count(system)) << system;
    EXPECT_TRUE(excluded.count(ns)) << "the injector's own namespace";
    for (const auto& e : w["objectSelector"]["matchExpressions"]) {
      if (e["key"].as<std::string>() != "vane.dev/inject") continue;
      pod_opt_in =
          pod_opt_in || (e["operator"].as<std::string>() == "In" && e["values"][0].as<std::string>() == "enabled");
      pod_opt_out =
          pod_opt_out || (e["operator"].as<std::string>() == "NotIn" && e["values"][0].as<std::string>() == "disabled");
    }
    EXPECT_TRUE(pod_opt_in || pod_opt_out) << "no objectSelector on vane.dev/inject";
    if (namespace_opt_in) opted_in_by.insert("namespace");
    if (pod_opt_in) opted_in_by.insert("pod");
  }
  EXPECT_EQ(opted_in_by, (std::set<std::string>{"namespace", "pod"})) << "a label on the pod or on its namespace";
  auto own_ns = r.named("Namespace", ns);
  EXPECT_EQ(own_ns["metadata"]["labels"]["vane.dev/inject"].as<std::string>(""), "disabled");
  // The Deployment's arguments start the real binary (throwaway certificates in place of the Secret's).
  test_pki pki;
  auto cert = pki.issue("webhook", {"vane-inject-webhook." + ns + ".svc"});
  std::vector<std::string> args;
  for (std::size_t i = 1; i < c["args"].size(); ++i) {
    auto a = c["args"][i].as<std::string>();
    args.push_back(a == cert_path ? cert.certificate : a == key_path ? cert.private_key : a);
  }
  auto listen = arg_after(c, "--inject-webhook");
  bool port_named = false;
  for (const auto& p : c["ports"])
    port_named = port_named ||
                 (p["containerPort"].as<int>() == port_of(listen) &&
                  p["name"].as<std::string>() ==
                      r.named("Service", "vane-inject-webhook")["spec"]["ports"][0]["targetPort"].as<std::string>());
  EXPECT_TRUE(port_named) << "the Service's target port is the webhook's " << listen;
  std::replace(args.begin(), args.end(), listen, std::string("127.0.0.1:0"));
  child_process webhook(control_binary(), args);
  EXPECT_TRUE(webhook.wait_for("inject webhook listening on")) << webhook.output();
}

TEST(K8s, KubernetesModeOverlayRunsTwoLeaderElectedControllersOnFlaggersKinds) {
  if (which("kubectl").empty()) GTEST_SKIP() << "kubectl is not installed";
  auto r = render("overlays/kubernetes-mode");
  check_common(r);
  // Flagger's three kinds, named as Flagger names them, with a status subresource and a permissive schema.
  ASSERT_EQ(r.of("CustomResourceDefinition").size(), 3U);
  for (const auto& [plural, kind] : std::map<std::string, std::string>{
           {"canaries", "Canary"}, {"metrictemplates", "MetricTemplate"}, {"alertproviders", "AlertProvider"}}) {
    SCOPED_TRACE(plural);
    auto crd = r.named("CustomResourceDefinition", plural + ".flagger.app");
    ASSERT_TRUE(crd);
    const auto& spec = crd["spec"];
    EXPECT_EQ(spec["group"].as<std::string>(), "flagger.app");
    EXPECT_EQ(spec["scope"].as<std::string>(), "Namespaced");
    EXPECT_EQ(spec["names"]["kind"].as<std::string>(), kind);
    EXPECT_EQ(spec["names"]["listKind"].as<std::string>(), kind + "List");
    EXPECT_EQ(spec["names"]["plural"].as<std::string>(), plural);
    std::string singular = kind;
    std::transform(singular.begin(), singular.end(), singular.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    EXPECT_EQ(spec["names"]["singular"].as<std::string>(), singular);
    ASSERT_EQ(spec["versions"].size(), 1U);
    const auto& v = spec["versions"][0];
    EXPECT_EQ(v["name"].as<std::string>(), "v1beta1");
    EXPECT_TRUE(v["served"].as<bool>(false));
    EXPECT_TRUE(v["storage"].as<bool>(false));
    EXPECT_TRUE(v["subresources"]["status"].IsMap());
    const auto& props = v["schema"]["openAPIV3Schema"]["properties"];
    for (const char* part : {"spec", "status"})
      EXPECT_TRUE(props[part]["x-kubernetes-preserve-unknown-fields"].as<bool>(false)) << part;
  }
  // RBAC: exactly the verbs vane-control uses.
  std::set<std::string> granted;
  for (const char* kind : {"ClusterRole", "Role"})
    for (const auto& role : r.of(kind))
      for (const auto& rule : role["rules"])
        for (const auto& g : rule["apiGroups"])
          for (const auto& res : rule["resources"])
            for (const auto& verb : rule["verbs"])
              granted.insert(std::string(kind) + " " + g.as<std::string>() + "/" + res.as<std::string>() + " " +
                             verb.as<std::string>());
  std::set<std::string> expected;
  auto grant = [&](const std::string& kind, const std::string& what, std::initializer_list<const char*> verbs) {
    for (const char* verb : verbs) expected.insert(kind + " " + what + " " + verb);
  };
  grant("ClusterRole", "flagger.app/canaries", {"get", "list", "watch", "update"});
  grant("ClusterRole", "flagger.app/canaries/status", {"update", "patch"});
  for (const char* what : {"flagger.app/metrictemplates", "flagger.app/alertproviders"})
    grant("ClusterRole", what, {"get", "list", "watch"});
  grant("ClusterRole", "apps/deployments", {"get", "list", "watch", "create", "update", "patch"});
  for (const char* what : {"/services", "/configmaps", "/secrets", "autoscaling/horizontalpodautoscalers"})
    grant("ClusterRole", what, {"get", "list", "watch", "create", "update"});
  grant("ClusterRole", "/events", {"create", "patch"});
  grant("ClusterRole", "discovery.k8s.io/endpointslices", {"list", "watch"});
  grant("Role", "coordination.k8s.io/leases", {"get", "create", "update"});
  EXPECT_EQ(granted, expected);
  // Two vane-control replicas with leader election, Kubernetes mode, no state volume.
  auto [d, c] = running(r, "vane-control");
  ASSERT_TRUE(d) << "no vane-control Deployment";
  const std::string ns = d["metadata"]["namespace"].as<std::string>();
  EXPECT_EQ(d["spec"]["replicas"].as<int>(), 2);
  std::set<std::string> args;
  for (const auto& a : c["args"]) args.insert(a.as<std::string>());
  EXPECT_TRUE(args.count("--kubernetes"));
  EXPECT_TRUE(args.count("--leader-elect"));
  for (const char* flag : {"--state", "--canaries"}) EXPECT_FALSE(args.count(flag)) << flag;
  EXPECT_TRUE(r.of("PersistentVolumeClaim").empty());
  for (const auto& v : d["spec"]["template"]["spec"]["volumes"]) EXPECT_FALSE(v["persistentVolumeClaim"]) << v;
  auto [token_volume, token_key] = volume_for(d, c, arg_after(c, "--proxy-token-file"));
  EXPECT_TRUE(token_volume["secret"]);
  EXPECT_TRUE(r.named("PodDisruptionBudget", "vane-control"));
  // Its ServiceAccount has the ClusterRole everywhere, and the Lease's Role in its own namespace.
  const auto account = d["spec"]["template"]["spec"]["serviceAccountName"].as<std::string>("");
  EXPECT_EQ(r.named("ServiceAccount", account)["metadata"]["namespace"].as<std::string>(""), ns);
  std::set<std::string> bound;
  for (const char* kind : {"RoleBinding", "ClusterRoleBinding"})
    for (const auto& b : r.of(kind))
      for (const auto& subject : b["subjects"])
        if (subject["name"].as<std::string>() == account && subject["namespace"].as<std::string>() == ns) {
          auto role = r.named(b["roleRef"]["kind"].as<std::string>(), b["roleRef"]["name"].as<std::string>());
          EXPECT_TRUE(role) << b["roleRef"];
          if (std::string(kind) == "RoleBinding") {
            EXPECT_EQ(b["metadata"]["namespace"].as<std::string>(""), ns);
            EXPECT_EQ(role["metadata"]["namespace"].as<std::string>(""), ns);
          }
          bound.insert(b["roleRef"]["kind"].as<std::string>());
        }
  EXPECT_EQ(bound, (std::set<std::string>{"ClusterRole", "Role"}));
  // The Canary, as a Flagger user writes it, with provider vane.
  auto canaries = r.of("Canary");
  ASSERT_EQ(canaries.size(), 1U);
  const auto& canary = canaries[0];
  const auto& cs = canary["spec"];
  const std::string app_ns = canary["metadata"]["namespace"].as<std::string>();
  EXPECT_EQ(canary["apiVersion"].as<std::string>(), "flagger.app/v1beta1");
  EXPECT_EQ(cs["provider"].as<std::string>(""), "vane");
  auto target = r.named("Deployment", cs["targetRef"]["name"].as<std::string>());
  ASSERT_TRUE(target) << "no target Deployment";
  EXPECT_EQ(target["metadata"]["namespace"].as<std::string>(), app_ns);
  auto hpa = r.named("HorizontalPodAutoscaler", cs["autoscalerRef"]["name"].as<std::string>(""));
  ASSERT_TRUE(hpa);
  EXPECT_EQ(hpa["spec"]["scaleTargetRef"]["name"].as<std::string>(), cs["targetRef"]["name"].as<std::string>());
  const int service_port = cs["service"]["port"].as<int>();
  EXPECT_TRUE(port_numbers(target).count(service_port) ||
              port_names(target).count(cs["service"]["targetPort"].as<std::string>("")));
  // Its proxies: the fleet Service of this rendering, over the pods that run the proxy, on their admin port.
  auto [pd, pc] = running(r, "vane-proxy");
  ASSERT_TRUE(pd);
  ASSERT_EQ(cs["proxies"].size(), 1U);
  auto fleet = cs["proxies"][0].as<std::string>();
  ASSERT_EQ(fleet.rfind("k8s:", 0), 0U) << fleet;
  auto slash = fleet.find('/'), colon = fleet.rfind(':');
  auto svc = r.named("Service", fleet.substr(slash + 1, colon - slash - 1));
  ASSERT_TRUE(svc) << fleet;
  EXPECT_EQ(svc["metadata"]["namespace"].as<std::string>(), fleet.substr(4, slash - 4));
  EXPECT_TRUE(selects(svc["spec"]["selector"], pd["spec"]["template"]["metadata"]["labels"]));
  bool named = false;
  for (const auto& p : svc["spec"]["ports"]) named = named || p["name"].as<std::string>() == fleet.substr(colon + 1);
  EXPECT_TRUE(named) << "the fleet Service has no port named " << fleet.substr(colon + 1);
  EXPECT_TRUE(port_names(pd).count(fleet.substr(colon + 1)));
  // The proxy splits between the Services that vane-control creates for the Canary.
  const std::string apex = cs["service"]["name"].as<std::string>(cs["targetRef"]["name"].as<std::string>());
  auto config = check_proxy(r, pd, pc, {{apex + "-primary", service_port}, {apex + "-canary", service_port}});
  ASSERT_TRUE(config);
  bool route = false;
  for (const auto& l : config["listeners"])
    for (const auto& rt : l["routes"]) route = route || rt["name"].as<std::string>() == cs["route"].as<std::string>();
  EXPECT_TRUE(route) << "no proxy route " << cs["route"];
  // The document is accepted by the controller's parser.
  auto dir = make_temp_dir();
  YAML::Emitter out;
  out << canary;
  write_file(dir + "/canary.yaml", out.c_str());
  auto [code, text] = run(control_binary(), {"--validate", "--canaries", dir});
  EXPECT_EQ(code, 0) << text;
}

TEST(K8s, DockerfileNamesFilesThatExistAndDebianPackagesThatHoldTheLibraries) {
  auto text = read_text_file(source_dir() + "/Dockerfile");
  std::istringstream in(text);
  std::string line, joined;
  std::vector<std::string> instructions;
  while (std::getline(in, line)) {  // instructions, with continuation lines joined
    if (line.empty() || line[0] == '#') continue;
    if (!line.empty() && line.back() == '\\') {
      joined += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    instructions.push_back(joined + line);
    joined.clear();
  }
  int stage = -1;
  std::vector<std::set<std::string>> packages;
  std::vector<std::string> from;
  for (const auto& ins : instructions) {
    std::istringstream words(ins);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w[0] == "FROM") {
      ++stage;
      packages.emplace_back();
      from.push_back(w[1]);
      EXPECT_TRUE(w[1] == "debian:12" || w[1] == "debian:12-slim") << "not a Debian 12 base: " << w[1];
    } else if (w[0] == "COPY" && w[1].rfind("--from=", 0) != 0) {
      for (std::size_t i = 1; i + 1 < w.size(); ++i)
        EXPECT_TRUE(fs::exists(source_dir() + "/" + w[i])) << "COPY of a missing " << w[i];
    } else if (w[0] == "RUN") {
      auto at = std::find(w.begin(), w.end(), "install");
      for (auto it = at == w.end() ? w.end() : at + 1; it != w.end() && *it != "&&"; ++it)
        if ((*it)[0] != '-') packages[static_cast<std::size_t>(stage)].insert(*it);
    }
  }
  ASSERT_EQ(stage, 1) << "a build stage and a runtime stage";
  EXPECT_EQ(text.find("USER 0"), std::string::npos);
  EXPECT_NE(text.find("USER 65532"), std::string::npos) << "runs as non-root";
  EXPECT_NE(text.find("COPY --from=build /src/build-release/proxy/vane-proxy"), std::string::npos);
  EXPECT_NE(text.find("COPY --from=build /src/build-release/control/vane-control"), std::string::npos);
  EXPECT_NE(text.find("scripts/build.sh build-release"), std::string::npos) << "the binaries it copies are built";
  EXPECT_TRUE(packages[1].count("ca-certificates"));
  // Every package name is Debian's (apt's lists are there after scripts/setup.sh's apt-get update).
  auto apt_cache = which("apt-cache");
  if (!apt_cache.empty())
    for (const auto& stage_packages : packages)
      for (const auto& p : stage_packages) {
        auto [code, out] = run(apt_cache, {"show", "--no-all-versions", p});
        EXPECT_EQ(code, 0) << p << " is not a Debian package here";
      }
  // The runtime stage holds the package of every shared library the binaries load
  // (those of debian:12-slim itself aside).
  std::set<std::string> in_slim = {"libc6", "libgcc-s1", "libstdc++6"};
  for (const auto& binary : {proxy_binary(), control_binary()}) {
    auto [code, out] = run("/usr/bin/ldd", {binary});
    ASSERT_EQ(code, 0) << out;
    std::istringstream libs(out);
    for (std::string l; std::getline(libs, l);) {
      auto arrow = l.find("=> /");
      if (arrow == std::string::npos) continue;
      auto path = l.substr(arrow + 3, l.find(' ', arrow + 3) - arrow - 3);
      if (path.find("asan") != std::string::npos || path.find("ubsan") != std::string::npos)
        continue;  // sanitizer builds
      // dpkg knows a file by the path its package ships it at: /lib or /usr/lib, the link or its target.
      auto real = fs::canonical(path).string();
      int dcode = 1;
      std::string owner;
      for (const auto& candidate : {path, real, "/usr" + path, real.rfind("/usr/", 0) == 0 ? real.substr(4) : real}) {
        std::tie(dcode, owner) = run("/usr/bin/dpkg", {"-S", candidate});
        if (dcode == 0) break;
      }
      ASSERT_EQ(dcode, 0) << "no package owns " << real;
      auto pkg = owner.substr(0, owner.find(':'));
      EXPECT_TRUE(packages[1].count(pkg) || in_slim.count(pkg)) << binary << " needs " << real << " from " << pkg;
    }
  }
}
