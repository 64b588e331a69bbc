// Where the Kubernetes API is (control/k8s_config.*): a pod's service account
// files, kubeconfig files good and bad, the token read again after a minute.
#include "control/k8s_config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using vane::config_error;
using vane::control::k8s_config;
using vane::control::k8s_in_cluster_config;
using vane::control::k8s_kubeconfig;
using vane::control::k8s_token_source;

namespace {

class K8sConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("vane_k8s_config_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  // The kubeconfig's errors, one a line.
  std::string errors_of(const std::string& text) {
    std::vector<config_error> errors;
    auto c = k8s_kubeconfig(write("kubeconfig", text), "", errors);
    EXPECT_FALSE(c);
    std::string out;
    for (const auto& e : errors) out += e.to_string() + "\n";
    return out;
  }
  std::filesystem::path dir_;
};

// "Y2EtcGVt" is base64 for "ca-pem", "Y2VydA==" for "cert", "a2V5" for "key".
const char* good = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: other
  cluster: {server: "https://other:1"}
- name: kind
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: Y2EtcGVt
contexts:
- name: dev
  context: {cluster: kind, user: admin, namespace: shop}
users:
- name: admin
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
)";

TEST_F(K8sConfig, KubeconfigCurrentContext) {
  std::vector<config_error> errors;
  auto c = k8s_kubeconfig(write("kubeconfig", good), "", errors);
  ASSERT_TRUE(c) << (errors.empty() ? "" : errors[0].to_string());
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->port, "6443");
  EXPECT_EQ(c->base_path, "");
  EXPECT_EQ(c->ca_pem, "ca-pem");
  EXPECT_EQ(c->client_certificate_pem, "cert");
  EXPECT_EQ(c->client_key_pem, "key");
  EXPECT_EQ(c->namespace_name, "shop");
  EXPECT_TRUE(c->token.empty());
}

TEST_F(K8sConfig, KubeconfigFilesRelativeToItsFolderAndTokens) {
  write("ca.crt", "CA FROM FILE");
  const std::string text = R"(current-context: c
clusters:
- name: k
  cluster: {server: "https://[::1]/k8s/clusters/c-1/", certificate-authority: ca.crt, tls-server-name: api.local}
contexts:
- name: c
  context: {cluster: k, user: u}
users:
- name: u
  user: {token: abc, tokenFile: token}
)";
  std::vector<config_error> errors;
  auto c = k8s_kubeconfig(write("kubeconfig", text), "", errors);
  ASSERT_TRUE(c) << (errors.empty() ? "" : errors[0].to_string());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, "443");
  EXPECT_EQ(c->base_path, "/k8s/clusters/c-1");
  EXPECT_EQ(c->ca_pem, "CA FROM FILE");
  EXPECT_EQ(c->tls_server_name, "api.local");
  EXPECT_EQ(c->token, "abc");
  EXPECT_EQ(c->token_file, (dir_ / "token").string());
  EXPECT_EQ(c->namespace_name, "default");
}

TEST_F(K8sConfig, KubeconfigContextChosen) {
  std::vector<config_error> errors;
  auto path = write("kubeconfig", std::string(good) + R"(- name: second
  user: {token: t2}
)");
  // A context given by name wins over current-context; an unknown one is an error at the file's start.
  auto c = k8s_kubeconfig(path, "missing", errors);
  EXPECT_FALSE(c);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].message, R"(no context named "missing" in contexts)");
}

TEST_F(K8sConfig, KubeconfigErrorsPointAtTheirPlace) {
  EXPECT_EQ(errors_of("clusters: []\n"),
            dir_.string() + "/kubeconfig:1:1: no current-context (give one, or a context with --kube-context)\n");
  EXPECT_EQ(errors_of("current-context: x\ncontexts: []\n"),
            dir_.string() + "/kubeconfig:1:18: no context named \"x\" in contexts\n");
  EXPECT_EQ(errors_of("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n"
                      "  cluster: {server: \"http://h:80\"}\n"),
            dir_.string() + "/kubeconfig:7:21: the server must be an https:// URL: http://h:80\n");
  EXPECT_EQ(errors_of("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n"
                      "- name: k\n  cluster: {server: \"https://h\", certificate-authority-data: \"%%\"}\n"
                      "users:\n- name: u\n  user:\n    exec: {command: aws}\n"),
            dir_.string() + "/kubeconfig:7:62: certificate-authority-data is not base64\n" + dir_.string() +
                "/kubeconfig:11:11: exec credentials are not supported: give a token or a client certificate\n");
  EXPECT_EQ(errors_of("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n"
                      "  cluster: {server: \"https://h:99999\"}\n"),
            dir_.string() + "/kubeconfig:7:21: not a port in https://h:99999\n");
  EXPECT_EQ(errors_of("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n"
                      "  cluster: {certificate-authority: missing.crt}\n"),
            dir_.string() + "/kubeconfig:7:12: cluster \"k\" has no server\n" + dir_.string() +
                "/kubeconfig:7:36: " + dir_.string() + "/missing.crt: cannot open: No such file or directory\n");
  EXPECT_EQ(errors_of("current-context: [c\n").substr(0, dir_.string().size() + 14),
            dir_.string() + "/kubeconfig:2:");  // where the unclosed [ was found unclosed
  std::vector<config_error> errors;
  EXPECT_FALSE(k8s_kubeconfig((dir_ / "absent").string(), "", errors));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].line, 1);
}

TEST_F(K8sConfig, InCluster) {
  write("token", "tok-1\n");
  write("ca.crt", "CA");
  write("namespace", "shop");
  std::string error;
  auto c = k8s_in_cluster_config("10.96.0.1", "443", dir_.string(), error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->host, "10.96.0.1");
  EXPECT_EQ(c->port, "443");
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->namespace_name, "shop");
  EXPECT_EQ(c->token_file, dir_.string() + "/token");
  auto v6 = k8s_in_cluster_config("fd00::1", "6443", dir_.string(), error);
  ASSERT_TRUE(v6) << error;
  EXPECT_EQ(v6->host, "fd00::1");
  EXPECT_FALSE(k8s_in_cluster_config("", "", dir_.string(), error));
  EXPECT_NE(error.find("KUBERNETES_SERVICE_HOST"), std::string::npos);
  std::filesystem::remove(dir_ / "token");
  EXPECT_FALSE(k8s_in_cluster_config("10.96.0.1", "443", dir_.string(), error));
  EXPECT_NE(error.find("token"), std::string::npos) << error;
}

TEST_F(K8sConfig, TokenFileReadAgainAfterAMinute) {
  k8s_config c;
  c.token_file = write("token", "first\n");
  k8s_token_source tokens(c);
  const auto t0 = k8s_token_source::clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(tokens.token(t0), "first");
  write("token", "second");  // the kubelet rotated it
  EXPECT_EQ(tokens.token(t0 + std::chrono::seconds(59)), "first");
  EXPECT_EQ(tokens.token(t0 + std::chrono::seconds(60)), "second");
  std::filesystem::remove(dir_ / "token");  // unreadable: the last token stays, and why is kept
  EXPECT_EQ(tokens.token(t0 + std::chrono::seconds(121)), "second");
  EXPECT_NE(tokens.last_error().find("token"), std::string::npos);
  EXPECT_EQ(tokens.reads(), 2U);
}

}  // namespace
