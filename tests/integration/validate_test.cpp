// `vane-proxy --validate` as a user runs it: every example config is valid,
// and a bad one prints every error as FILE:LINE:COL and exits 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "tests/support/fixtures.hpp"
#include "tests/support/tls.hpp"

using namespace vane::test;

TEST(Validate, EveryExampleConfigIsValid) {
  std::set<std::string> expected{"split.yaml",      "routes.yaml",  "health-checked.yaml",
                                 "ab-testing.yaml", "sticky.yaml",  "mirroring.yaml",
                                 "tls.yaml",        "guarded.yaml", "grpc.yaml"};
  std::set<std::string> seen;
  // tls.yaml names tls.crt and tls.key beside it: validated as a copy next to throwaway ones.
  test_pki pki;
  auto cert = pki.issue("tls", {"localhost"});
  for (const auto& entry : std::filesystem::directory_iterator(source_dir() + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    seen.insert(entry.path().filename().string());
    std::string path = entry.path().string();
    if (entry.path().filename() == "tls.yaml") {
      path = pki.dir() + "/tls.yaml";
      std::filesystem::copy_file(entry.path(), path);
    }
    auto [code, output] = run(proxy_binary(), {"--validate", "--config", path});
    EXPECT_EQ(code, 0) << entry.path() << ":\n" << output;
    EXPECT_NE(output.find(": valid"), std::string::npos) << output;
  }
  // Every example is listed here, so a new one is noticed (and each is loaded by name).
  EXPECT_EQ(seen, expected);
}

TEST(Validate, BadConfigPrintsEveryErrorAndExits1) {
  std::string path = make_temp_dir() + "/bad.yaml";
  write_file(path, R"(listeners:
  - name: http
    address: 127.0.0.1:99999
    routes:
      - name: r
        split: [{cluster: nope, weight: 1}]
        retries: {attempts: 99}
clusters: []
)");
  auto [code, output] = run(proxy_binary(), {"--validate", "--config", path});
  EXPECT_EQ(code, 1);
  EXPECT_NE(output.find(path + ":3:14: listener.address: '127.0.0.1:99999' is not HOST:PORT"), std::string::npos)
      << output;
  EXPECT_NE(output.find(path + ":6:27: split names unknown cluster 'nope'"), std::string::npos) << output;
  EXPECT_NE(output.find(path + ":7:29: retries.attempts must be between 0 and 10, got 99"), std::string::npos)
      << output;
  EXPECT_NE(output.find("3 errors, config refused"), std::string::npos) << output;
}

// Values that would be taken and then misbehave are refused at load: an SNI OpenSSL cannot send (its
// host name check was then skipped), a duration that overflows a deadline (fired at once).
TEST(Validate, AnUnsendableSniAndAnOverflowingDurationAreRefused) {
  std::string path = make_temp_dir() + "/bad.yaml";
  write_file(path, R"(limits: {idle_timeout: 2600000h}
listeners:
  - name: http
    address: 127.0.0.1:0
    routes: [{name: r, split: [{cluster: c, weight: 1}]}]
clusters:
  - name: c
    endpoints: [127.0.0.1:1]
    tls: {sni: )" + std::string(300, 'a') +
                       R"(}
)");
  auto [code, output] = run(proxy_binary(), {"--validate", "--config", path});
  EXPECT_EQ(code, 1);
  EXPECT_NE(output.find(path + ":9:16: cluster.tls.sni: '" + std::string(64, 'a') + "' is not a host name"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find(path + ":1:24: "), std::string::npos) << output;  // the duration, at its place
}

TEST(Validate, MissingFileAndBadFlags) {
  auto [code, output] = run(proxy_binary(), {"--validate", "--config", "/nonexistent/vane.yaml"});
  EXPECT_EQ(code, 1);
  EXPECT_NE(output.find("/nonexistent/vane.yaml:1:1: /nonexistent/vane.yaml: cannot open"), std::string::npos)
      << output;
  auto [code2, output2] = run(proxy_binary(), {"--workers", "0", "--config", "x"});
  EXPECT_EQ(code2, 2);
  EXPECT_NE(output2.find("--workers needs a number"), std::string::npos) << output2;
  auto [code3, output3] = run(proxy_binary(), {"--help"});
  EXPECT_EQ(code3, 0);
  EXPECT_NE(output3.find("usage: vane-proxy --config FILE"), std::string::npos);
}

TEST(Validate, ProxyRefusesToStartOnABadConfig) {
  std::string path = make_temp_dir() + "/bad.yaml";
  write_file(path, "listeners: [}\n");
  auto [code, output] = run(proxy_binary(), {"--config", path});
  EXPECT_EQ(code, 1);
  EXPECT_NE(output.find(path + ":1:"), std::string::npos) << output;
}
