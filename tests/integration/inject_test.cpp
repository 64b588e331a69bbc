// `vane-control inject`, the real binary on real manifests: the examples of
// k8s/examples and a GitOps-style application (Deployment + HPA + Service)
// against golden files in tests/golden/inject/ (VANE_UPDATE_GOLDEN=1 writes
// them anew: review the diff), idempotence through a pipe, bad input, and
// agreement with what the kustomize Component injects.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <cstdlib>

#include "common/yaml_json.hpp"
#include "tests/support/fixtures.hpp"

using namespace vane::test;
namespace json = boost::json;

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
