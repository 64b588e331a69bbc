#include "common/match_vocabulary.hpp"

namespace vane {

std::optional<string_match_kind> match_kind_from_name(std::string_view name) {
  for (const auto& [n, k] : match_kind_names)
    if (n == name) return k;
  return std::nullopt;
}

std::string_view match_kind_name(string_match_kind kind) {
  for (const auto& [n, k] : match_kind_names)
    if (k == kind) return n;
  return "exact";
}

}  // namespace vane
