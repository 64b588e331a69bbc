#include "filters/decision/decision.hpp"

#include <fmt/format.h>

#include "filters/split/split.hpp"

namespace vane {

bool exact_share_hit(std::uint64_t& n, std::uint32_t per_10k) {
  bool hit = (n + 1) * per_10k / 10000 > n * per_10k / 10000;
  ++n;
  return hit;
}

affinity_policy affinity_policy::make(std::string cookie, std::string primary_cookie, std::string value,
                                      std::int64_t max_age_seconds) {
  affinity_policy a;
  a.set_canary = fmt::format("{}={}; Max-Age={}; Path=/", cookie, value, max_age_seconds);
  a.expire_canary = fmt::format("{}=; Max-Age=0; Path=/", cookie);
  if (!primary_cookie.empty()) {
    a.set_primary = fmt::format("{}={}; Max-Age={}; Path=/", primary_cookie, value, max_age_seconds);
    a.expire_primary = fmt::format("{}=; Max-Age=0; Path=/", primary_cookie);
  }
  a.cookie = std::move(cookie);
  a.primary_cookie = std::move(primary_cookie);
  a.value = std::move(value);
  return a;
}

std::size_t route_decision::split_pick(const request_view& req, std::span<std::int64_t> swrr) const {
  if (hash) {
    std::optional<std::string_view> key;
    switch (*hash) {
      case hash_kind::header:
        key = req.header(hash_name);
        break;
      case hash_kind::cookie:
        key = find_cookie(req, hash_name);
        break;
      case hash_kind::source_ip:
        key = req.source_ip();
        break;
    }
    if (key) return pick_by_point(weights, sticky_point(*key));
  }
  return pick_smooth(weights, swrr);
}

std::size_t route_decision::pick(const request_view& req, std::span<std::int64_t> swrr,
                                 affinity_cookies& cookies) const {
  for (const auto& rule : rules)
    if (rule_holds(rule.any, req)) return rule.target;
  if (!affinity || weights.size() < 2) return split_pick(req, swrr);
  const affinity_policy& a = *affinity;
  const std::size_t canary = weights.size() - 1;
  const bool canary_live = weights.back() > 0;
  bool expire_canary = false, expire_primary = false;
  if (auto c = find_cookie(req, a.cookie)) {
    if (*c == a.value && canary_live) return canary;
    expire_canary = true;  // an earlier run's, or the canary is out
  }
  if (!a.primary_cookie.empty()) {
    if (auto p = find_cookie(req, a.primary_cookie)) {
      if (*p == a.value && canary_live) return 0;
      expire_primary = true;
    }
  }
  std::size_t pick = split_pick(req, swrr);
  std::size_t n = 0;
  if (canary_live && pick == canary) {
    cookies[n++] = &a.set_canary;
    expire_canary = false;
  } else if (canary_live && pick == 0 && !a.primary_cookie.empty()) {
    cookies[n++] = &a.set_primary;
    expire_primary = false;
  }
  if (expire_canary) cookies[n++] = &a.expire_canary;
  if (expire_primary && n < cookies.size()) cookies[n++] = &a.expire_primary;
  return pick;
}

route_decision route_decision::without(std::size_t target) const {
  route_decision d = *this;
  if (target >= d.weights.size()) return d;
  d.weights[target] = 0;
  std::erase_if(d.rules, [&](const ab_rule& r) { return r.target == target; });
  if (target == 0) d.affinity.reset();
  bool any = false;
  for (auto w : d.weights) any = any || w > 0;
  if (!any)
    for (std::size_t i = 0; i < d.weights.size() && !any; ++i)
      if (i != target) d.weights[i] = 1, any = true;
  return d;
}

}  // namespace vane
