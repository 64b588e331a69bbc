#include "filters/route_match/route_match.hpp"

#include <algorithm>

#include "common/regex.hpp"

namespace vane {
namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}
}  // namespace

std::string_view host_without_port(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

std::string_view path_of_target(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

host_matcher::host_matcher(std::string pattern) : pattern_(std::move(pattern)) {
  if (pattern_.empty() || pattern_ == "*") {
    kind_ = kind::any;
  } else if (pattern_.starts_with("*.")) {
    kind_ = kind::suffix;
    suffix_ = pattern_.substr(1);
  } else {
    kind_ = kind::exact;
  }
}

bool host_matcher::matches(std::string_view host_header) const {
  switch (kind_) {
    case kind::any:
      return true;
    case kind::exact:
      return iequals(host_without_port(host_header), pattern_);
    case kind::suffix: {
      auto host = host_without_port(host_header);
      return host.size() > suffix_.size() && iequals(host.substr(host.size() - suffix_.size()), suffix_);
    }
  }
  return false;
}

path_matcher path_matcher::prefix(std::string p) {
  path_matcher m;
  m.kind_ = kind::prefix;
  m.value_ = std::move(p);
  return m;
}

path_matcher path_matcher::exact(std::string p) {
  path_matcher m;
  m.kind_ = kind::exact;
  m.value_ = std::move(p);
  return m;
}

path_matcher path_matcher::regex(const std::string& pattern) {
  path_matcher m;
  m.kind_ = kind::regex;
  m.value_ = pattern;
  auto compiled = compile_regex(pattern);
  m.re_ = std::move(compiled.re);
  m.error_ = std::move(compiled.error);
  return m;
}

bool path_matcher::matches(std::string_view path) const {
  switch (kind_) {
    case kind::any:
      return true;
    case kind::prefix:
      return path.starts_with(value_);
    case kind::exact:
      return path == value_;
    case kind::regex:
      return re_ && re2::RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *re_);
  }
  return false;
}

}  // namespace vane
