#include "common/regex.hpp"

#include <re2/re2.h>

namespace vane {

compiled_regex compile_regex(std::string_view pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<const RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) return {nullptr, "invalid RE2 regex: " + re->error()};
  return {std::move(re), {}};
}

}  // namespace vane
