// Sidecar injection: the pod transform (control/inject.*), the manifests
// around it (control/inject_manifests.*), the YAML <-> JSON conversion
// (common/yaml_json.*) and the JSON Patch diff (common/json_patch.*).
#include "control/inject.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/json_patch.hpp"
#include "common/yaml_json.hpp"
#include "control/admission.hpp"
#include "control/inject_manifests.hpp"
#include "tests/support/json_patch.hpp"

namespace json = boost::json;
using vane::control::inject_manifests;
using vane::control::inject_options;
using vane::control::inject_outcome;
using vane::control::inject_pod;

namespace {

std::vector<json::value> parse_yaml(const std::string& text) {
  vane::yaml_reader reader("test.yaml");
  std::vector<json::value> out;
  for (const auto& node : reader.parse_all(text)) {
    if (node.IsNull()) continue;
    auto v = vane::yaml_to_json(node, reader);
    EXPECT_TRUE(v) << text;
    if (v) out.push_back(*v);
  }
  EXPECT_TRUE(reader.ok()) << (reader.ok() ? "" : reader.errors()[0].to_string());
  return out;
}

const char* const pod_spec = R"(
      containers:
        - name: app
          image: example/app:1.0
          ports: [{name: http, containerPort: 8080}]
)";

// The pod spec text re-indented by `delta` columns.
std::string reindent(const std::string& text, int delta) {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto nl = text.find('\n', at);
    std::string line = text.substr(at, nl - at);
    at = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    if (delta > 0)
      line.insert(0, static_cast<std::size_t>(delta), ' ');
    else
      line.erase(0, static_cast<std::size_t>(-delta));
    out += line;
    out += '\n';
  }
  return out;
}

std::string replace_all_in(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// A manifest of `kind` whose pod template carries `labels` (a flow mapping).
std::string manifest(const std::string& kind, const std::string& labels = "{vane.dev/inject: enabled}") {
  std::string spec = pod_spec;
  if (kind == "Pod")
    return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: " + labels + "\nspec:\n" + reindent(spec, -4);
  std::string api = kind == "Job" || kind == "CronJob" ? "batch/v1" : "apps/v1";
  std::string head = "apiVersion: " + api + "\nkind: " + kind + "\nmetadata:\n  name: w\nspec:\n";
  if (kind == "CronJob")
    return head + "  schedule: '*/5 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n" +
           "          labels: " + labels + "\n        spec:\n" + reindent(spec, 4);
  return head + "  selector: {matchLabels: {app: w}}\n  template:\n    metadata:\n      labels: " + labels +
         "\n    spec:\n" + spec;
}

json::object& pod_template(json::value& doc) {
  auto& o = doc.as_object();
  const std::string kind(o.at("kind").as_string());
  if (kind == "Pod") return o;
  if (kind == "CronJob")
    return o["spec"].as_object()["jobTemplate"].as_object()["spec"].as_object()["template"].as_object();
  return o["spec"].as_object()["template"].as_object();
}

const json::object* container_named(const json::value& list, const std::string& name) {
  if (!list.is_array()) return nullptr;
  for (const auto& c : list.as_array())
    if (c.as_object().at("name").as_string() == name) return &c.as_object();
  return nullptr;
}

// The checks every injected pod template passes.
void expect_injected(json::object& pod, bool classic = false, const std::string& config_map = "vane-proxy-config") {
  auto& spec = pod["spec"].as_object();
  const json::object* proxy = nullptr;
  if (classic) {
    EXPECT_FALSE(container_named(spec["initContainers"], "vane-proxy"));
    auto& containers = spec["containers"].as_array();
    proxy = &containers.back().as_object();
    EXPECT_EQ(containers.front().as_object().at("name"), "app") << "the app stays the first container";
    EXPECT_FALSE(proxy->contains("restartPolicy"));
  } else {
    auto& init = spec["initContainers"].as_array();
    proxy = &init.front().as_object();
    EXPECT_EQ(proxy->at("restartPolicy"), "Always");
    EXPECT_FALSE(container_named(spec["containers"], "vane-proxy"));
  }
  ASSERT_EQ(proxy->at("name"), "vane-proxy");
  // The container of k8s/base/proxy, as compiled in.
  const auto& tpl = vane::control::proxy_pod_template();
  json::object expected = tpl.at("spec").at("initContainers").at(0).as_object();
  if (classic) expected.erase("restartPolicy");
  EXPECT_EQ(*proxy, expected);
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) EXPECT_TRUE(proxy->contains(probe));
  EXPECT_EQ(proxy->at("securityContext").at("runAsNonRoot"), true);
  const auto* config = container_named(spec["volumes"], "vane-proxy-config");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->at("configMap").at("name"), config_map.c_str());
  const auto* token = container_named(spec["volumes"], "vane-admin-token");
  ASSERT_TRUE(token);
  EXPECT_EQ(token->at("secret").at("secretName"), "vane-admin-token");
  const auto& annotations = pod["metadata"].as_object()["annotations"].as_object();
  EXPECT_EQ(annotations.at("prometheus.io/scrape"), "true");
  EXPECT_EQ(annotations.at("prometheus.io/port"), "9901");
  EXPECT_EQ(annotations.at("prometheus.io/path"), "/metrics");
  EXPECT_TRUE(pod["metadata"].as_object()["labels"].as_object().contains("vane.dev/fleet"));
  EXPECT_EQ(spec.at("terminationGracePeriodSeconds"), 40);
}

}  // namespace

TEST(InjectPod, EveryKindWithAPodTemplateGetsTheNativeSidecar) {
  for (std::string kind : {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}) {
    SCOPED_TRACE(kind);
    auto text = manifest(kind);
    ASSERT_EQ(parse_yaml(text).size(), 1U) << text;
    auto r = inject_manifests(text, "in.yaml", {});
    ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
    ASSERT_EQ(r.notes.size(), 1U);
    EXPECT_NE(r.notes[0].find(": injected"), std::string::npos) << r.notes[0];
    auto docs = parse_yaml(r.text);
    ASSERT_EQ(docs.size(), 1U);
    expect_injected(pod_template(docs[0]));
    EXPECT_EQ(pod_template(docs[0])["metadata"].as_object()["labels"].as_object()["vane.dev/fleet"],
              "vane-proxy-config")
        << "pods that share a proxy config are one fleet";
    // Twice is once.
    auto again = inject_manifests(r.text, "out.yaml", {});
    EXPECT_EQ(again.text, r.text);
    EXPECT_NE(again.notes.at(0).find("already injected"), std::string::npos);
  }
}

TEST(InjectPod, ClassicSidecarIsTheLastContainerWithoutRestartPolicy) {
  for (std::string kind : {"Pod", "Deployment", "CronJob"}) {
    SCOPED_TRACE(kind);
    inject_options o;
    o.classic_sidecar = true;
    auto r = inject_manifests(manifest(kind), "in.yaml", o);
    ASSERT_TRUE(r.errors.empty());
    auto docs = parse_yaml(r.text);
    expect_injected(pod_template(docs.at(0)), true);
    // Injecting again, in either form, changes nothing.
    EXPECT_EQ(inject_manifests(r.text, "out.yaml", {}).text, r.text);
    EXPECT_EQ(inject_manifests(r.text, "out.yaml", o).text, r.text);
  }
}

TEST(InjectPod, OptInByLabelNamespaceOrAllAndOptOutByDisabled) {
  // No label: untouched, byte for byte.
  auto plain = manifest("Deployment", "{app: w}");
  EXPECT_EQ(inject_manifests(plain, "in.yaml", {}).text, plain);
  // --all injects it.
  inject_options all;
  all.all = true;
  auto docs = parse_yaml(inject_manifests(plain, "in.yaml", all).text);
  expect_injected(pod_template(docs.at(0)));
  // disabled wins over --all.
  auto disabled = manifest("Deployment", "{app: w, vane.dev/inject: disabled}");
  auto r = inject_manifests(disabled, "in.yaml", all);
  EXPECT_EQ(r.text, disabled);
  EXPECT_NE(r.notes.at(0).find("vane.dev/inject: disabled"), std::string::npos);
  // A Namespace of the input labelled enabled opts its workloads in; one labelled disabled opts them out.
  auto in_ns = replace_all_in(plain, "  name: w\n", "  name: w\n  namespace: demo\n");
  auto ns = [](const std::string& mode) {
    return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n  labels: {vane.dev/inject: " + mode + "}\n---\n";
  };
  docs = parse_yaml(inject_manifests(ns("enabled") + in_ns, "in.yaml", {}).text);
  ASSERT_EQ(docs.size(), 2U);
  expect_injected(pod_template(docs[1]));
  EXPECT_EQ(inject_manifests(ns("disabled") + in_ns, "in.yaml", all).text, ns("disabled") + in_ns);
  // A Namespace of another name changes nothing.
  auto other = replace_all_in(ns("enabled"), "name: demo", "name: other");
  EXPECT_EQ(inject_manifests(other + in_ns, "in.yaml", {}).text, other + in_ns);
}

TEST(InjectPod, ProxyConfigAnnotationNamesTheConfigMapAndAFleetLabelIsKept) {
  json::object pod = {
      {"metadata",
       {{"labels", {{"vane.dev/inject", "enabled"}, {"vane.dev/fleet", "podinfo"}}},
        {"annotations", {{"vane.dev/proxy-config", "frontend-proxy"}, {"prometheus.io/scrape", "false"}}}}},
      {"spec",
       {{"containers", json::array{{{"name", "app"}, {"image", "a:1"}}}}, {"terminationGracePeriodSeconds", 90}}}};
  auto r = inject_pod(pod, {});
  ASSERT_EQ(r.outcome, inject_outcome::injected);
  EXPECT_EQ(pod["spec"].as_object()["terminationGracePeriodSeconds"], 90) << "a longer grace period is kept";
  EXPECT_EQ(pod["metadata"].as_object()["labels"].as_object()["vane.dev/fleet"], "podinfo");
  pod["spec"].as_object()["terminationGracePeriodSeconds"] = 40;
  expect_injected(pod, false, "frontend-proxy");
  // A volume the pod already has by name is the pod's choice.
  json::object own = {
      {"metadata", {{"labels", {{"vane.dev/inject", "enabled"}}}}},
      {"spec",
       {{"containers", json::array{{{"name", "app"}}}},
        {"volumes", json::array{{{"name", "vane-admin-token"}, {"secret", {{"secretName", "mine"}}}}}}}}};
  ASSERT_EQ(inject_pod(own, {}).outcome, inject_outcome::injected);
  const auto& volumes = own["spec"].as_object()["volumes"].as_array();
  ASSERT_EQ(volumes.size(), 2U);
  EXPECT_EQ(volumes[0].at("secret").at("secretName"), "mine");
  // So is its own proxy config volume: the fleet is named by the ConfigMap it mounts.
  json::object own_config = {
      {"metadata", {{"labels", {{"vane.dev/inject", "enabled"}}}}},
      {"spec",
       {{"containers", json::array{{{"name", "app"}}}},
        {"volumes", json::array{{{"name", "vane-proxy-config"}, {"configMap", {{"name", "shop-proxy"}}}}}}}}};
  ASSERT_EQ(inject_pod(own_config, {}).outcome, inject_outcome::injected);
  EXPECT_EQ(own_config["metadata"].as_object()["labels"].as_object()["vane.dev/fleet"], "shop-proxy");
}

TEST(InjectPod, MalformedPodsAreReportedAndLeftAlone) {
  inject_options all;
  all.all = true;
  for (auto [pod_text, what] : std::vector<std::pair<std::string, std::string>>{
           {R"({"spec": {"containers": {"name": "app"}}})", "spec.containers must be a list"},
           {R"({"spec": {"containers": ["app"]}})", "spec.containers must be a list"},
           {R"({"spec": []})", "spec must be a mapping"},
           {R"({})", "spec must be a mapping"},
           {R"({"metadata": "x", "spec": {"containers": []}})", "metadata must be a mapping"},
           {R"({"metadata": {"labels": [1]}, "spec": {"containers": []}})", "metadata.labels must be a mapping"},
           {R"({"spec": {"containers": [], "initContainers": 3}})", "spec.initContainers must be a list"},
           {R"({"spec": {"containers": [], "volumes": {"a": 1}}})", "spec.volumes must be a list"},
           {R"({"metadata": {"annotations": {"vane.dev/proxy-config": "Not A Name"}}, "spec": {"containers": []}})",
            "metadata.annotations.vane.dev/proxy-config must be the name of a ConfigMap"},
       }) {
    SCOPED_TRACE(pod_text);
    auto pod = json::parse(pod_text).as_object();
    auto before = pod;
    auto r = inject_pod(pod, all, "spec.template.");
    EXPECT_EQ(r.outcome, inject_outcome::malformed);
    EXPECT_NE(r.message.find("spec.template." + what.substr(0, what.find(' '))), std::string::npos) << r.message;
    EXPECT_NE(r.message.find(what.substr(what.find(' '))), std::string::npos) << r.message;
    EXPECT_EQ(pod, before);
  }
  // Not opted in: not looked at further.
  auto odd = json::parse(R"({"spec": {"containers": 1}})").as_object();
  EXPECT_EQ(inject_pod(odd, {}).outcome, inject_outcome::not_opted_in);
}

TEST(InjectManifests, BadInputIsAnErrorWithLineAndColumnAndNoOutput) {
  auto bad_yaml = inject_manifests("a: 1\n---\nkind: Pod\nmetadata: {name: [}\n", "in.yaml", {});
  ASSERT_EQ(bad_yaml.errors.size(), 1U);
  EXPECT_EQ(bad_yaml.errors[0].file, "in.yaml");
  EXPECT_EQ(bad_yaml.errors[0].line, 4);
  EXPECT_TRUE(bad_yaml.text.empty());
  auto scalar = inject_manifests("apiVersion: v1\nkind: Service\n---\njust some text\n", "in.yaml", {});
  ASSERT_EQ(scalar.errors.size(), 1U);
  EXPECT_EQ(scalar.errors[0].to_string(),
            "in.yaml:4:1: a manifest must be a mapping (a Kubernetes object), not a scalar");
  auto list = inject_manifests("- a\n- b\n", "in.yaml", {});
  ASSERT_EQ(list.errors.size(), 1U);
  EXPECT_NE(list.errors[0].message.find("not a list"), std::string::npos);
  auto malformed = inject_manifests(
      "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  template:\n    metadata: {labels: "
      "{vane.dev/inject: enabled}}\n    spec: {containers: 3}\n",
      "in.yaml", {});
  ASSERT_EQ(malformed.errors.size(), 1U);
  EXPECT_EQ(malformed.errors[0].to_string(),
            "in.yaml:2:1: Deployment w: spec.template.spec.containers must be a list of mappings");
  EXPECT_TRUE(malformed.text.empty());
}

TEST(InjectManifests, OtherDocumentsAndCommentsPassThroughByteForByte) {
  const std::string service =
      "# the Service, with comments\napiVersion: v1\nkind: Service\nmetadata:\n  name: s   # trailing\nspec:\n  "
      "ports: [{port: 80}]\n";
  const std::string config =
      "--- # a marker with a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
      "data:\n  vane.yaml: |\n    admin:\n      address: 0.0.0.0:9901\n";
  const std::string text = service + config + "---\n# above the Deployment\n" + manifest("Deployment") + "...\n";
  auto r = inject_manifests(text, "in.yaml", {});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.text.substr(0, service.size() + config.size()), service + config);
  EXPECT_NE(r.text.find("---\n# above the Deployment\napiVersion: apps/v1\n"), std::string::npos) << r.text;
  auto docs = parse_yaml(r.text);
  ASSERT_EQ(docs.size(), 3U);
  expect_injected(pod_template(docs[2]));
  // An empty input, and one of comments only, are fine.
  EXPECT_EQ(inject_manifests("", "in.yaml", {}).text, "");
  EXPECT_EQ(inject_manifests("# nothing\n---\n", "in.yaml", {}).text, "# nothing\n---\n");
}

// YAML 1.1 merge keys, which Kubernetes' reader applies (yaml-cpp reads "<<" as a plain key), as
// gopkg.in/yaml.v2 applies them: at the key's place, over the keys before it (the keys after it win); of a
// list, the earlier map wins; a quoted "<<" is an ordinary key.
TEST(YamlJson, MergeKeysAreAppliedAsKubernetesReadsThem) {
  auto docs = parse_yaml(R"(base: &app {name: a, image: x, ports: [80]}
more: &more {image: z, env: prod}
containers:
  - *app
  - {<<: *app, name: b}
  - <<: [*more, *app]
    name: c
  - {"<<": literal}
  - {name: d, <<: *app}
  - {<<: []}
)");
  ASSERT_EQ(docs.size(), 1U);
  const auto& c = docs[0].at("containers").as_array();
  EXPECT_EQ(json::serialize(c[1]), R"({"name":"b","image":"x","ports":[80]})");
  EXPECT_EQ(json::serialize(c[2]), R"({"name":"c","image":"z","ports":[80],"env":"prod"})");
  EXPECT_EQ(json::serialize(c[3]), R"({"<<":"literal"})");
  EXPECT_EQ(json::serialize(c[4]), R"({"name":"a","image":"x","ports":[80]})");
  EXPECT_EQ(json::serialize(c[5]), R"({})");
  // A merge of something else than maps is an error with its place.
  vane::yaml_reader reader("test.yaml");
  auto nodes = reader.parse_all("a: {<<: 3}\n");
  ASSERT_EQ(nodes.size(), 1U);
  EXPECT_FALSE(vane::yaml_to_json(nodes[0], reader));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.errors()[0].to_string().find("test.yaml:1:"), std::string::npos);
}

// Aliases cannot make the conversion run away: an alias bomb is refused, not expanded.
TEST(YamlJson, AliasBombsAreRefused) {
  std::string text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  std::string prev = "a";
  for (char name = 'b'; name <= 'i'; ++name) {
    text += std::string(1, name) + ": &" + std::string(1, name) + " [";
    for (int i = 0; i < 10; ++i) text += (i ? ", *" : "*") + prev;
    text += "]\n";
    prev = std::string(1, name);
  }
  vane::yaml_reader reader("test.yaml");
  auto nodes = reader.parse_all(text);
  ASSERT_EQ(nodes.size(), 1U);
  EXPECT_FALSE(vane::yaml_to_json(nodes[0], reader));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.errors()[0].to_string().find("too many values"), std::string::npos)
      << reader.errors()[0].to_string();
  // An alias inside what it names: an error (of the parser's or of the conversion's), not a crash.
  vane::yaml_reader cyclic("test.yaml");
  auto cycle = cyclic.parse_all("a: &x [1, *x]\n");
  if (cyclic.ok() && cycle.size() == 1) {
    EXPECT_FALSE(vane::yaml_to_json(cycle[0], cyclic));
  }
  EXPECT_FALSE(cyclic.ok());
}

TEST(YamlJson, ScalarsReadAsKubernetesReadsThemAndWriteBackTheSame) {
  auto docs = parse_yaml(
      "a: 'true'\nb: true\nc: \"9901\"\nd: 9901\ne: 0644\nf: yes\ng: ~\nh: 1.5\ni: on\nj: |\n  line 1\n  line 2\n"
      "k: 0x1F\nl: \"1:20\"\nm: '- x'\nflag: --config\no: \"a: b\"\np: ''\nq: \"tab\\there\"\nr: 1e3\n");
  ASSERT_EQ(docs.size(), 1U);
  const auto& o = docs[0].as_object();
  EXPECT_EQ(o.at("a"), "true");
  EXPECT_EQ(o.at("b"), true);
  EXPECT_EQ(o.at("c"), "9901");
  EXPECT_EQ(o.at("d"), 9901);
  EXPECT_EQ(o.at("e"), 420) << "octal, as Kubernetes reads a defaultMode";
  EXPECT_EQ(o.at("f"), true);
  EXPECT_TRUE(o.at("g").is_null());
  EXPECT_EQ(o.at("h"), 1.5);
  EXPECT_EQ(o.at("i"), true);
  EXPECT_EQ(o.at("j"), "line 1\nline 2\n");
  EXPECT_EQ(o.at("k"), 31);
  EXPECT_EQ(o.at("r"), 1000.0);
  // Written and read again: the same values.
  auto text = vane::json_to_yaml(docs[0]);
  EXPECT_NE(text.find("a: \"true\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("flag: --config\n"), std::string::npos) << text;
  EXPECT_NE(text.find("j: |\n  line 1\n  line 2\n"), std::string::npos) << text;
  EXPECT_EQ(parse_yaml(text).at(0), docs[0]) << text;
  json::value strings = {{"s", json::array{"yes",
                                           "No",
                                           "0755",
                                           "1_000",
                                           ".inf",
                                           "",
                                           " x",
                                           "x ",
                                           "a #b",
                                           "#c",
                                           "@a",
                                           "multi\n  indented\n\n",
                                           "no newline\nat end",
                                           "\nleading",
                                           "  first\nline",
                                           "ünïcödé",
                                           "[x]",
                                           "{y}",
                                           "*ref",
                                           "!tag",
                                           "%p",
                                           "null",
                                           "-",
                                           "---",
                                           "a\rb"}},
                         {"nested", json::array{json::array{1, 2}, json::object{}, json::array{}, nullptr}},
                         {"k: ey", {{"x/y~z", 1}}}};
  auto round = parse_yaml(vane::json_to_yaml(strings));
  ASSERT_EQ(round.size(), 1U);
  EXPECT_EQ(round[0], strings) << vane::json_to_yaml(strings);
}

TEST(JsonPatch, DiffAppliedToTheSourceGivesTheTarget) {
  auto from = json::parse(R"({"a": 1, "b": {"c": [1, 2, 3], "d/e": "x"}, "f": [{"n": 1}], "g": "gone"})");
  auto to =
      json::parse(R"({"a": 2, "b": {"c": [0, 1, 2, 3], "d/e": "y", "new": {}}, "f": [{"n": 1}, {"n": 2}], "h": [1]})");
  auto patch = vane::json_patch_diff(from, to);
  auto applied = from;
  vane::test::json_patch_apply(applied, patch);
  EXPECT_EQ(applied, to) << json::serialize(patch);
  EXPECT_NE(json::serialize(patch).find(R"("path":"/b/d~1e")"), std::string::npos) << json::serialize(patch);
  EXPECT_NE(json::serialize(patch).find(R"({"op":"add","path":"/b/c/0","value":0})"), std::string::npos);
  EXPECT_TRUE(vane::json_patch_diff(to, to).empty());
  for (auto [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"[1,2,3]", "[1,3]"}, {"[1,2,3]", "[4,5]"}, {"[1,2]", "[1,5]"}, {"{}", "[]"}, {"1", "{\"a\":1}"}}) {
    auto x = json::parse(a);
    auto y = json::parse(b);
    vane::test::json_patch_apply(x, vane::json_patch_diff(x, y));
    EXPECT_EQ(x, y) << a << " -> " << b;
  }
}

// --- the admission webhook's reviews (control/admission.*) ---

namespace {

json::object review_of(const json::value& pod, const std::string& uid = "uid-1") {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", uid},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"namespace", "demo"},
            {"operation", "CREATE"},
            {"object", pod}}}};
}

json::object answer_of(const vane::control::admission_result& r) {
  EXPECT_EQ(r.reply.status, 200U) << r.reply.body;
  auto v = json::parse(r.reply.body);
  EXPECT_EQ(v.at("apiVersion"), "admission.k8s.io/v1");
  EXPECT_EQ(v.at("kind"), "AdmissionReview");
  return v.at("response").as_object();
}

}  // namespace

TEST(InjectAdmission, Base64IsRfc4648) {
  using vane::control::base64_encode;
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(InjectAdmission, ThePatchAppliedToThePodIsWhatInjectGives) {
  auto pod = json::parse(R"({"apiVersion": "v1", "kind": "Pod",
      "metadata": {"generateName": "web-", "labels": {"app": "web", "vane.dev/inject": "enabled"},
                   "annotations": {"vane.dev/proxy-config": "web-proxy"}},
      "spec": {"initContainers": [{"name": "migrate", "image": "m:1"}],
               "containers": [{"name": "web", "image": "w:1"}],
               "volumes": [{"name": "data", "emptyDir": {}}], "terminationGracePeriodSeconds": 30}})");
  for (bool classic : {false, true}) {
    inject_options o;
    o.classic_sidecar = classic;
    auto response = answer_of(vane::control::review_admission(json::serialize(review_of(pod, "abc-123")), o));
    EXPECT_EQ(response.at("uid"), "abc-123");
    EXPECT_EQ(response.at("allowed"), true);
    EXPECT_EQ(response.at("patchType"), "JSONPatch");
    auto patch = json::parse(vane::test::base64_decode(std::string(response.at("patch").as_string())));
    auto patched = pod;
    vane::test::json_patch_apply(patched, patch.as_array());
    auto expected = pod.as_object();
    o.all = true;
    ASSERT_EQ(inject_pod(expected, o).outcome, inject_outcome::injected);
    EXPECT_EQ(patched, json::value(expected)) << json::serialize(patch);
    // The sidecar goes first among the init containers: the others can use it.
    if (!classic) {
      EXPECT_EQ(patched.at("spec").at("initContainers").at(0).at("name"), "vane-proxy");
    }
  }
}

TEST(InjectAdmission, InjectsUnlessDisabledAndNeverTwice) {
  auto pod = json::parse(R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}})");
  // No label: the webhook configuration's selectors sent it (its namespace opted in).
  auto response = answer_of(vane::control::review_admission(json::serialize(review_of(pod)), {}));
  EXPECT_TRUE(response.contains("patch"));
  pod.as_object()["metadata"].as_object()["labels"] = json::object{{"vane.dev/inject", "disabled"}};
  response = answer_of(vane::control::review_admission(json::serialize(review_of(pod)), {}));
  EXPECT_EQ(response.at("allowed"), true);
  EXPECT_FALSE(response.contains("patch"));
  EXPECT_FALSE(response.contains("patchType"));
  auto injected = json::parse(R"({"spec": {"containers": [{"name": "app"}, {"name": "vane-proxy"}]}})");
  response = answer_of(vane::control::review_admission(json::serialize(review_of(injected)), {}));
  EXPECT_FALSE(response.contains("patch"));
  // Not a Pod: allowed as it is.
  auto review = review_of(pod);
  review["request"].as_object()["kind"] = json::object{{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}};
  response = answer_of(vane::control::review_admission(json::serialize(review), {}));
  EXPECT_FALSE(response.contains("patch"));
  // A name the API server has not checked yet cannot start a line of its own in the log.
  auto forged = json::parse(
      R"({"metadata": {"generateName": "web-\n2026-12-01T00:00:00.000Z info forged"}, "spec": {"containers": []}})");
  const auto result = vane::control::review_admission(json::serialize(review_of(forged)), {});
  EXPECT_EQ(result.log_line.find('\n'), std::string::npos) << result.log_line;
  EXPECT_NE(result.log_line.find("web-?2026"), std::string::npos) << result.log_line;
}

TEST(InjectAdmission, AnOddPodIsAllowedWithAWarningAndNoPatch) {
  for (const char* odd : {R"({"spec": {"containers": "app"}})", R"({"spec": 7})", R"({"metadata": []})",
                          R"({"spec": {"containers": [1, 2]}})", R"({"spec": {"containers": [], "volumes": {}}})"}) {
    SCOPED_TRACE(odd);
    auto response = answer_of(vane::control::review_admission(json::serialize(review_of(json::parse(odd))), {}));
    EXPECT_EQ(response.at("allowed"), true);
    EXPECT_FALSE(response.contains("patch"));
    ASSERT_TRUE(response.contains("warnings"));
    EXPECT_NE(std::string(response.at("warnings").at(0).as_string()).find("vane-proxy not injected: "),
              std::string::npos);
  }
}

TEST(InjectAdmission, MalformedReviewsAre400WithAJsonError) {
  auto pod = json::parse(R"({"spec": {"containers": []}})");
  auto without = [&](const char* key) {
    auto r = review_of(pod);
    r["request"].as_object().erase(key);
    return json::serialize(r);
  };
  auto with = [&](const char* key, json::value v) {
    auto r = review_of(pod);
    r[key] = std::move(v);
    return json::serialize(r);
  };
  for (const auto& [body, message] : std::vector<std::pair<std::string, std::string>>{
           {"", "not a JSON document"},
           {"{\"apiVersion\": ", "not a JSON document"},
           {"[1, 2]", "must be a JSON object"},
           {with("kind", "Pod"), "expected kind AdmissionReview"},
           {with("apiVersion", "admission.k8s.io/v1beta1"), "admission.k8s.io/v1"},
           {with("request", "x"), "request must be an object"},
           {json::serialize(json::object{{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}}),
            "request must be an object"},
           {without("uid"), "request.uid"},
           {without("object"), "request.object must be an object"},
       }) {
    SCOPED_TRACE(body);
    auto r = vane::control::review_admission(body, {});
    EXPECT_EQ(r.reply.status, 400U);
    auto error = json::parse(r.reply.body);
    EXPECT_NE(std::string(error.at("error").as_string()).find(message), std::string::npos) << r.reply.body;
  }
}
