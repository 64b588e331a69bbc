#pragma once
// The one place an RE2 regex is set up, for every user of regexes (route
// paths, A/B matchers, vane-control's documents): the same options, and the
// same error text wherever a bad pattern is refused.
#include <memory>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
}

namespace vane {

struct compiled_regex {
  std::shared_ptr<const re2::RE2> re;  // set when the pattern compiles; immutable, shareable between threads
  std::string error;                   // otherwise "invalid RE2 regex: <RE2's reason>"
  explicit operator bool() const { return re != nullptr; }
};

// Compiles `pattern` (RE2 syntax; RE2 runs in linear time, so no ReDoS) with
// errors returned, never logged.
compiled_regex compile_regex(std::string_view pattern);

}  // namespace vane
