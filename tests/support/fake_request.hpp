#pragma once
// A request_view over plain fields, for unit tests of the decision filters.
#include <map>
#include <string>
#include <vector>

#include "filters/rules/rules.hpp"

namespace vane::test {

struct fake_request : request_view {
  std::multimap<std::string, std::string> fields;  // lower-case names
  std::string target_ = "/";
  std::string ip = "10.0.0.1";
  std::optional<std::string_view> header(std::string_view name) const override {
    auto it = fields.find(std::string(name));
    if (it == fields.end()) return std::nullopt;
    return std::string_view(it->second);
  }
  std::vector<std::string_view> headers(std::string_view name) const override {
    std::vector<std::string_view> out;
    auto [b, e] = fields.equal_range(std::string(name));
    for (auto it = b; it != e; ++it) out.emplace_back(it->second);
    return out;
  }
  std::string_view target() const override { return target_; }
  std::string_view source_ip() const override { return ip; }
};

}  // namespace vane::test
