#pragma once
// The per-request traffic decisions of a route, composed: A/B rules, session
// affinity, sticky hashing, the weighted split; and the small policies the
// request path asks (exact shares for faults and mirroring, which failures a
// route retries). Pure functions of a request_view and injected state: no
// socket, no clock, no randomness, so every case is unit-tested.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "filters/retry/retry.hpp"  // retry_on, for the config schema
#include "filters/rules/rules.hpp"

namespace vane {

// Exact shares, as the demo service's: with p hundredths of a percent, the
// n-th event (from 0) is hit when floor((n+1)p/10000) > floor(np/10000); so
// 5% hits exactly 5 of every 100. Advances n.
bool exact_share_hit(std::uint64_t& n, std::uint32_t per_10k);

enum class hash_kind { header, cookie, source_ip };

struct ab_rule {
  std::vector<match_alternative> any;
  std::size_t target = 0;
};

// Session affinity with its Set-Cookie field values made once, not per request.
struct affinity_policy {
  std::string cookie, primary_cookie, value;
  std::string set_canary, expire_canary, set_primary, expire_primary;
  static affinity_policy make(std::string cookie, std::string primary_cookie, std::string value,
                              std::int64_t max_age_seconds);
};

// Set-Cookie values a response must carry: at most one cookie set and one
// expired, or two expired.
using affinity_cookies = std::array<const std::string*, 2>;

struct route_decision {
  std::vector<std::uint32_t> weights;  // the split; its clusters are targets 0 .. weights.size()-1
  std::vector<ab_rule> rules;
  std::optional<hash_kind> hash;
  std::string hash_name;  // header (lower case) or cookie name
  std::optional<affinity_policy> affinity;

  // The target that gets the request: the first rule that holds; else a
  // session affinity cookie of this run while the canary (the split's last
  // cluster) has weight — the primary is the split's first; else the sticky
  // pick when the request has the hash key; else the smooth weighted
  // round-robin over `swrr` (per-worker state, one per split entry). Fills
  // `cookies` with what the response must set or expire.
  std::size_t pick(const request_view& req, std::span<std::int64_t> swrr, affinity_cookies& cookies) const;

  // The same decision with split target `target` left out (a tripped guard):
  // its weight 0, the rules that send to it dropped, so that a request they
  // would have sent there falls through to the split; session affinity then
  // sends no one to it (a canary with weight 0 is out, its cookies expire),
  // and is off when `target` is the primary. When no other target of the
  // split has weight, the first other one gets it all. Targets keep their
  // numbers, so per-target state and stats stay valid.
  route_decision without(std::size_t target) const;

 private:
  std::size_t split_pick(const request_view& req, std::span<std::int64_t> swrr) const;
};

}  // namespace vane
