#pragma once
// Fault injection (Envoy's fault filter, Flagger's and Istio's fault fields):
// a delay before the request goes on, and/or an abort answered in place of
// the upstream. Shares are in hundredths of a percent (0..10000) and exact,
// not random: with 5%, exactly 5 of every 100 requests of a worker. A pure
// decision over the worker's counters: no clock, no socket.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>

#include "common/units.hpp"

namespace vane {

struct abort_fault {
  unsigned status = 503;
  std::uint32_t per_10k = 0;
  bool operator==(const abort_fault&) const = default;
};
struct delay_fault {
  duration delay{};
  std::uint32_t per_10k = 0;
  bool operator==(const delay_fault&) const = default;
};
struct fault_config {
  std::optional<abort_fault> abort;
  std::optional<delay_fault> delay;
  bool operator==(const fault_config&) const = default;
};

// Requests seen by one fault on one worker: [0] by its abort, [1] by its delay.
using fault_counts = std::array<std::uint64_t, 2>;

struct fault_outcome {
  std::optional<duration> delay;  // wait this long first
  std::optional<unsigned> abort;  // then answer this status instead of going on
};

// What `f` does to the next request, counting it.
fault_outcome decide_fault(const fault_config& f, fault_counts& counts);

}  // namespace vane
