#pragma once
// HTTP's optional whitespace (OWS: spaces and horizontal tabs, RFC 9110
// §5.6.3) around a field value or a list element, taken off.
#include <string_view>

namespace vane {

constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace vane
