#include "control/phase.hpp"

#include <utility>

namespace vane::control {

namespace {

constexpr std::pair<canary_phase, std::string_view> names[] = {
    {canary_phase::initialized, "Initialized"}, {canary_phase::waiting, "Waiting"},
    {canary_phase::progressing, "Progressing"}, {canary_phase::waiting_promotion, "WaitingPromotion"},
    {canary_phase::promoting, "Promoting"},     {canary_phase::finalising, "Finalising"},
    {canary_phase::succeeded, "Succeeded"},     {canary_phase::failed, "Failed"},
};

}  // namespace

std::string_view phase_name(canary_phase p) {
  for (const auto& [phase, name] : names)
    if (phase == p) return name;
  return "Initialized";
}

std::optional<canary_phase> phase_from_name(std::string_view name) {
  for (const auto& [phase, n] : names)
    if (n == name) return phase;
  return std::nullopt;
}

}  // namespace vane::control
