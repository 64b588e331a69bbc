#pragma once
// Route matching on host and path: pure functions over views of the request.
//
// Host patterns are as Envoy's virtual host domains: an exact name, or
// "*.suffix" which matches any name that ends with ".suffix" (not the bare
// suffix itself). Comparison ignores case and the port of the Host header.
// Paths are matched on the path alone (no query string): prefix, exact, or an
// RE2 regex that must match the whole path (RE2 is linear-time: no ReDoS).
#include <re2/re2.h>

#include <memory>
#include <string>
#include <string_view>

namespace vane {

// "Example.com:8080" -> "Example.com", "[::1]:80" -> "[::1]". No allocation.
std::string_view host_without_port(std::string_view host_header);
// "/a/b?x=1" -> "/a/b". No allocation.
std::string_view path_of_target(std::string_view target);

class host_matcher {
 public:
  host_matcher() = default;  // matches any host
  explicit host_matcher(std::string pattern);
  bool matches(std::string_view host_header) const;
  const std::string& pattern() const { return pattern_; }

 private:
  enum class kind { any, exact, suffix } kind_ = kind::any;
  std::string pattern_;
  std::string suffix_;  // ".example.com" for "*.example.com"
};

class path_matcher {
 public:
  enum class kind { any, prefix, exact, regex };
  path_matcher() = default;  // matches any path
  static path_matcher prefix(std::string p);
  static path_matcher exact(std::string p);
  // Returns a matcher whose valid() is false (and error() says why: compile_regex's
  // "invalid RE2 regex: ...") when the regex does not compile.
  static path_matcher regex(const std::string& pattern);

  bool valid() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool matches(std::string_view path) const;

 private:
  kind kind_ = kind::any;
  std::string value_;
  std::shared_ptr<const re2::RE2> re_;
  std::string error_;
};

}  // namespace vane
