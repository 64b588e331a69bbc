// `vane-control inject`, the real binary on real manifests: the examples of
// k8s/examples and a GitOps-style application (Deployment + HPA + Service)
// against golden files in tests/golden/inject/ (VANE_UPDATE_GOLDEN=1 writes
// them anew: review the diff), idempotence through a pipe, bad input, and
// agreement with what the kustomize Component injects. And the admission
// webhook (`vane-control --inject-webhook`) over HTTPS with AdmissionReview
// documents as the API server sends them: its patch applied to the pod is
// what `inject` gives; malformed reviews; a certificate swapped as the
// kubelet swaps a Secret volume.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>

#include "common/yaml_json.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/json_patch.hpp"
#include "tests/support/tls.hpp"

using namespace vane::test;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

struct inject_run {
  int code = -1;
  std::string out, err;
};

// vane-control inject ARGS, with `input` on stdin; stdout and stderr apart.
inject_run run_inject(const std::vector<std::string>& args, const std::string& input = "") {
  auto dir = make_temp_dir();
  write_file(dir + "/in", input);
  std::string command = control_binary() + " inject";
  for (const auto& a : args) command += " '" + a + "'";
  command += " <" + dir + "/in >" + dir + "/out 2>" + dir + "/err";
  auto [code, ignored] = run("/bin/sh", {"-c", command});
  return {code, read_text_file(dir + "/out"), read_text_file(dir + "/err")};
}

std::string golden_dir() { return source_dir() + "/tests/golden/inject/"; }

void expect_golden(const std::string& output, const std::string& golden) {
  const std::string path = golden_dir() + golden;
  if (std::getenv("VANE_UPDATE_GOLDEN")) write_file(path, output);
  EXPECT_EQ(output, read_text_file(path)) << "differs from " << path << " (VANE_UPDATE_GOLDEN=1 rewrites it)";
}

std::vector<json::value> documents(const std::string& text) {
  vane::yaml_reader reader("t");
  std::vector<json::value> out;
  for (const auto& n : reader.parse_all(text))
    if (auto v = vane::yaml_to_json(n, reader); v && v->is_object()) out.push_back(*v);
  EXPECT_TRUE(reader.ok());
  return out;
}

std::string which(const std::string& tool) {
  auto [code, out] = run("/bin/sh", {"-c", "command -v " + tool});
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return code == 0 ? out : std::string();
}

}  // namespace

TEST(Inject, GoldenFilesOfTheExamplesAndAGitOpsApplication) {
  struct golden_case {
    std::string input;  // relative to the source directory
    std::vector<std::string> flags;
    std::string golden;
  };
  for (const auto& c : std::vector<golden_case>{
           {"tests/golden/inject/checkout.yaml", {}, "checkout.injected.yaml"},
           {"tests/golden/inject/checkout.yaml", {"--classic-sidecar"}, "checkout.classic.yaml"},
           {"k8s/examples/frontend/frontend.yaml", {"--all"}, "frontend.injected.yaml"},
           {"k8s/examples/podinfo/podinfo-primary.yaml", {"--all"}, "podinfo-primary.injected.yaml"},
       }) {
    SCOPED_TRACE(c.input);
    auto args = c.flags;
    args.insert(args.begin(), {"-f", source_dir() + "/" + c.input});
    auto r = run_inject(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find(": injected"), std::string::npos) << r.err;
    expect_golden(r.out, c.golden);
    // Idempotent: the output through `inject -` again is the same, byte for byte.
    auto again = run_inject(c.flags, r.out);
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_EQ(again.out, r.out);
    EXPECT_NE(again.err.find("already injected"), std::string::npos) << again.err;
  }
  // Without a label nor --all, an example is written back untouched.
  auto podinfo = read_text_file(source_dir() + "/k8s/examples/podinfo/podinfo-canary.yaml");
  auto r = run_inject({}, podinfo);
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(r.out, podinfo);
}

TEST(Inject, BadInputIsRefusedWithLineAndColumnAndNothingWritten) {
  auto r = run_inject({"-f", "-"}, "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("<stdin>:4:1: "), std::string::npos) << r.err;
  r = run_inject({}, "apiVersion: v1\nkind: Service\n---\n[not, a, mapping]\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("<stdin>:4:1: a manifest must be a mapping"), std::string::npos) << r.err;
  r = run_inject({"-f", "/nonexistent/file.yaml"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/nonexistent/file.yaml"), std::string::npos) << r.err;
  r = run_inject({"--bogus"});
  EXPECT_EQ(r.code, 2);
  r = run_inject({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("vane.dev/inject: enabled"), std::string::npos);
}

// What `inject` adds is what the sidecar overlay's Component adds: the same pod template.
TEST(Inject, AgreesWithTheKustomizeComponent) {
  auto kubectl = which("kubectl");
  if (kubectl.empty()) GTEST_SKIP() << "kubectl is not installed";
  auto [code, rendered] = run(kubectl, {"kustomize", source_dir() + "/k8s/overlays/sidecar"});
  ASSERT_EQ(code, 0) << rendered;
  json::value component;
  for (auto& d : documents(rendered))
    if (d.at("kind") == "Deployment" && d.at("metadata").at("name") == "frontend") component = d;
  ASSERT_TRUE(component.is_object());
  auto r = run_inject({"--all", "-f", source_dir() + "/k8s/examples/frontend/frontend.yaml"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto injected = documents(r.out);
  ASSERT_EQ(injected.size(), 1U);
  const auto& want = component.at("spec").at("template");
  const auto& got = injected[0].at("spec").at("template");
  EXPECT_EQ(got.at("spec"), want.at("spec")) << json::serialize(got) << "\n" << json::serialize(want);
  EXPECT_EQ(got.at("metadata").at("annotations"), want.at("metadata").at("annotations"));
  EXPECT_EQ(got.at("metadata").at("labels"), want.at("metadata").at("labels"));
}

namespace {

// A Secret volume as the kubelet writes it: DIR/tls.crt -> ..data/tls.crt,
// ..data -> a timestamped directory; a new version is a new directory and
// an atomic rename of the ..data link.
class secret_volume {
 public:
  secret_volume() : dir_(make_temp_dir()) {
    fs::create_symlink("..data/tls.crt", dir_ + "/tls.crt");
    fs::create_symlink("..data/tls.key", dir_ + "/tls.key");
  }
  void write(const issued_cert& cert) {
    const std::string version = "..v" + std::to_string(++versions_);
    fs::create_directory(dir_ + "/" + version);
    fs::copy_file(cert.certificate, dir_ + "/" + version + "/tls.crt");
    fs::copy_file(cert.private_key, dir_ + "/" + version + "/tls.key");
    fs::create_symlink(version, dir_ + "/..data_tmp");
    fs::rename(dir_ + "/..data_tmp", dir_ + "/..data");
  }
  std::string certificate() const { return dir_ + "/tls.crt"; }
  std::string private_key() const { return dir_ + "/tls.key"; }

 private:
  std::string dir_;
  int versions_ = 0;
};

struct webhook_instance {
  std::unique_ptr<child_process> process;
  std::uint16_t port = 0;
};

webhook_instance start_webhook(const secret_volume& secret, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--inject-webhook",   "127.0.0.1:0", "--tls-cert",
                                   secret.certificate(), "--tls-key",   secret.private_key()};
  args.insert(args.end(), extra.begin(), extra.end());
  webhook_instance w;
  w.process = std::make_unique<child_process>(control_binary(), args);
  auto line = w.process->wait_for("listening on");
  if (!line) throw std::runtime_error("the webhook did not start: " + w.process->output());
  w.port = port_of_line(*line);
  return w;
}

const std::string webhook_name = "vane-inject.vane-system.svc";

// The pod of a review after the webhook's answer: its JSON Patch applied.
json::value patched_pod(const json::value& review, const json::object& response) {
  json::value pod = review.at("request").at("object");
  if (response.contains("patch")) {
    EXPECT_EQ(response.at("patchType"), "JSONPatch");
    auto patch = json::parse(base64_decode(std::string(response.at("patch").as_string())));
    json_patch_apply(pod, patch.as_array());
  }
  return pod;
}

}  // namespace

TEST(Inject, WebhookPatchAppliedToThePodIsWhatInjectGives) {
  test_pki pki;
  secret_volume secret;
  secret.write(pki.issue("webhook", {webhook_name}));
  for (bool classic : {false, true}) {
    SCOPED_TRACE(classic ? "classic" : "native");
    auto w =
        start_webhook(secret, classic ? std::vector<std::string>{"--classic-sidecar"} : std::vector<std::string>{});
    const std::string text = read_text_file(golden_dir() + "admission-review.json");
    auto review = json::parse(text);
    tls_client client(w.port, webhook_name, pki.ca_certificate());
    auto r = client.request("POST", "/inject", text);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    auto answer = json::parse(r.body);
    EXPECT_EQ(answer.at("apiVersion"), "admission.k8s.io/v1");
    EXPECT_EQ(answer.at("kind"), "AdmissionReview");
    const auto& response = answer.at("response").as_object();
    EXPECT_EQ(response.at("uid"), review.at("request").at("uid"));
    EXPECT_EQ(response.at("allowed"), true);
    ASSERT_TRUE(response.contains("patch")) << r.body;
    auto pod = patched_pod(review, response);
    // `inject` on the same pod (JSON is YAML) gives the same object.
    auto dir = make_temp_dir();
    write_file(dir + "/pod.json", json::serialize(review.at("request").at("object")));
    std::vector<std::string> args = {"-f", dir + "/pod.json"};
    if (classic) args.push_back("--classic-sidecar");
    auto injected = run_inject(args);
    ASSERT_EQ(injected.code, 0) << injected.err;
    auto docs = documents(injected.out);
    ASSERT_EQ(docs.size(), 1U);
    EXPECT_EQ(pod, docs[0]) << json::serialize(pod) << "\n" << json::serialize(docs[0]);
    const auto& spec = pod.at("spec");
    EXPECT_EQ((classic ? spec.at("containers").at(1) : spec.at("initContainers").at(0)).at("name"), "vane-proxy");
    EXPECT_EQ(spec.at("volumes").at(2).at("configMap").at("name"), "checkout-proxy");
    // The injected pod sent again (a re-invocation) gets no patch.
    auto again = review;
    again.at("request").as_object()["object"] = pod;
    r = client.request("POST", "/inject", json::serialize(again));
    ASSERT_EQ(r.status, 200);
    EXPECT_FALSE(json::parse(r.body).at("response").as_object().contains("patch")) << r.body;
    EXPECT_TRUE(w.process->wait_for("shop/checkout-6d8c7b9f5-*: injected"));
  }
}

TEST(Inject, WebhookAnswersMalformedReviewsWith400AndOddPodsWithAWarning) {
  test_pki pki;
  secret_volume secret;
  secret.write(pki.issue("webhook", {webhook_name}));
  auto w = start_webhook(secret);
  auto review = json::parse(read_text_file(golden_dir() + "admission-review.json"));
  auto without = [&](const char* key) {
    auto r = review;
    r.at("request").as_object().erase(key);
    return json::serialize(r);
  };
  auto with_kind = [&](const char* kind) {
    auto r = review;
    r.as_object()["kind"] = kind;
    return json::serialize(r);
  };
  tls_client client(w.port, webhook_name, pki.ca_certificate());
  for (const auto& body : {std::string("not json"), std::string("{\"request\": {}}"), std::string("[]"),
                           with_kind("ConversionReview"), without("uid"), without("object"), std::string()}) {
    SCOPED_TRACE(body);
    auto r = tls_client(w.port, webhook_name, pki.ca_certificate()).request("POST", "/inject", body);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_TRUE(json::parse(r.body).as_object().contains("error")) << r.body;
  }
  // An odd pod is let through as it is, with a warning the API server shows the user.
  auto odd = review;
  odd.at("request").at("object").as_object()["spec"].as_object()["containers"] = "checkout";
  auto r = client.request("POST", "/inject", json::serialize(odd));
  ASSERT_EQ(r.status, 200) << r.body;
  auto response = json::parse(r.body).at("response").as_object();
  EXPECT_EQ(response.at("allowed"), true);
  EXPECT_FALSE(response.contains("patch"));
  EXPECT_NE(std::string(response.at("warnings").at(0).as_string()).find("spec.containers must be a list"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(client.get("/inject").status, 405);
  EXPECT_EQ(client.get("/elsewhere").status, 404);
  EXPECT_EQ(client.get("/ready").status, 200);
  // Still serving, and still alive.
  r = client.request("POST", "/inject", json::serialize(review));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(json::parse(r.body).at("response").as_object().contains("patch"));
}

TEST(Inject, WebhookServesTheRenewedCertificateWhenTheSecretIsSwapped) {
  test_pki pki;
  secret_volume secret;
  auto first = pki.issue("first", {webhook_name});
  secret.write(first);
  auto w = start_webhook(secret);
  tls_client before(w.port, webhook_name, pki.ca_certificate());
  EXPECT_EQ(before.peer_serial(), first.serial);
  EXPECT_EQ(before.get("/ready").status, 200);
  auto second = pki.issue("second", {webhook_name});
  secret.write(second);
  EXPECT_TRUE(eventually(
      [&] { return tls_client(w.port, webhook_name, pki.ca_certificate()).peer_serial() == second.serial; }));
  EXPECT_TRUE(w.process->wait_for("reloaded"));
  // The connection opened before goes on with the certificate it started with.
  EXPECT_EQ(before.get("/ready").status, 200);
  // A pair that does not load (a key of another certificate) is refused, and the last good one stays.
  auto third = pki.issue("third", {webhook_name});
  third.private_key = first.private_key;
  secret.write(third);
  EXPECT_EQ(tls_client(w.port, webhook_name, pki.ca_certificate()).peer_serial(), second.serial);
  EXPECT_TRUE(w.process->wait_for("does not load"));
}

TEST(Inject, WebhookRefusesToStartWithoutACertificate) {
  auto [code, out] = run(control_binary(), {"--inject-webhook", "127.0.0.1:0"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--tls-cert"), std::string::npos) << out;
  std::tie(code, out) = run(control_binary(), {"--inject-webhook", "127.0.0.1:0", "--tls-cert", "/nonexistent.crt",
                                               "--tls-key", "/nonexistent.key"});
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("/nonexistent.crt"), std::string::npos) << out;
}
