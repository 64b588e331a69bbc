#include "filters/mirror/mirror.hpp"

#include "filters/decision/decision.hpp"

namespace vane {

mirror_verdict decide_mirror(const mirror_rule& rule, std::uint64_t& seen, std::optional<std::uint64_t> declared_length,
                             bool mirror_busy) {
  if (!exact_share_hit(seen, rule.per_10k)) return mirror_verdict::skip;
  if (declared_length && *declared_length > rule.max_body) return mirror_verdict::shed_body;
  if (mirror_busy) return mirror_verdict::shed_overload;
  return mirror_verdict::copy;
}

std::string shadow_host(std::string_view host) {
  const std::size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos &&
      (host.front() != '[' || host[colon - 1] == ']'))
    return std::string(host.substr(0, colon)) + "-shadow" + std::string(host.substr(colon));
  return std::string(host) + "-shadow";
}

}  // namespace vane
