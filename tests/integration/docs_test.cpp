// The contract lives in docs/: every key the config loader accepts is
// documented there, and nothing in README.md or docs/ points outside the
// repository or is a placeholder for a figure not yet measured.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>

#include "tests/support/fixtures.hpp"

using namespace vane::test;

namespace {

// The keys of every `check_keys(node, "what", {"a", "b", ...})` list in a
// source file: what the loader accepts, read from the one place that decides it.
std::set<std::string> accepted_keys(const std::string& source) {
  std::set<std::string> keys;
  const std::regex list(R"(check_keys(?:_ignoring)?\([^{]*\{([^}]*)\})");
  const std::regex quoted(R"re("([^"]+)")re");
  for (std::sregex_iterator it(source.begin(), source.end(), list), end; it != end; ++it) {
    const std::string inside = (*it)[1];
    for (std::sregex_iterator q(inside.begin(), inside.end(), quoted); q != end; ++q) keys.insert((*q)[1]);
  }
  return keys;
}

// Documented: written as `key` or as `key:` (in a YAML example).
bool documented(const std::string& docs, const std::string& key) {
  return docs.find("`" + key) != std::string::npos || docs.find(key + ":") != std::string::npos;
}

}  // namespace

TEST(Docs, EveryProxyConfigKeyIsDocumented) {
  const std::string dir = source_dir();
  const auto keys = accepted_keys(read_text_file(dir + "/proxy/config.cpp"));
  ASSERT_GT(keys.size(), 50u) << "the check_keys lists were not found: did the loader change shape?";
  const std::string docs = read_text_file(dir + "/docs/configuration.md") + read_text_file(dir + "/docs/tls.md");
  for (const auto& key : keys) EXPECT_TRUE(documented(docs, key)) << "config key '" << key << "' is not in docs/";
}

TEST(Docs, NothingPointsOutsideTheRepositoryOrIsAPlaceholder) {
  const std::string dir = source_dir();
  std::vector<std::string> files{dir + "/README.md"};
  for (const auto& e : std::filesystem::directory_iterator(dir + "/docs"))
    if (e.path().extension() == ".md") files.push_back(e.path().string());
  const std::regex placeholder(R"(\b(FIGURES_[A-Z]+|[A-Z]+_SUMMARY|TODO)\b)");
  for (const auto& f : files) {
    const std::string text = read_text_file(f);
    EXPECT_EQ(text.find("../shared"), std::string::npos) << f;
    EXPECT_FALSE(std::regex_search(text, placeholder)) << f;
  }
}
