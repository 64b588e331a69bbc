#pragma once
// The A/B matcher vocabulary (Istio's StringMatch, as Flagger's `match` and
// vane-proxy's rules write it): the kinds and their names, as data. The
// proxy's rules (filters/rules) match with it; vane-control's documents
// (control/spec) check with it, without linking the matchers.
#include <optional>
#include <string_view>
#include <utility>

namespace vane {

enum class string_match_kind { exact, prefix, suffix, regex, present };

// The names of the YAML and JSON (Istio's): exact, prefix, suffix, regex, present.
inline constexpr std::pair<std::string_view, string_match_kind> match_kind_names[] = {
    {"exact", string_match_kind::exact},
    {"prefix", string_match_kind::prefix},
    {"suffix", string_match_kind::suffix},
    {"regex", string_match_kind::regex},
    {"present", string_match_kind::present}};

std::optional<string_match_kind> match_kind_from_name(std::string_view name);
std::string_view match_kind_name(string_match_kind kind);

}  // namespace vane
