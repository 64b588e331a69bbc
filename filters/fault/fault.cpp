#include "filters/fault/fault.hpp"

#include "filters/decision/decision.hpp"

namespace vane {

fault_outcome decide_fault(const fault_config& f, fault_counts& counts) {
  fault_outcome out;
  if (f.delay && exact_share_hit(counts[1], f.delay->per_10k)) out.delay = f.delay->delay;
  if (f.abort && exact_share_hit(counts[0], f.abort->per_10k)) out.abort = f.abort->status;
  return out;
}

}  // namespace vane
