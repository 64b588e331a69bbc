// The phase's one name table: Flagger's names both ways, nothing else accepted.
#include "control/phase.hpp"

#include <gtest/gtest.h>

#include <sstream>

using namespace vane::control;

TEST(CanaryPhase, EveryPhaseHasFlaggersNameBothWays) {
  const std::pair<canary_phase, std::string_view> all[] = {
      {canary_phase::initialized, "Initialized"}, {canary_phase::waiting, "Waiting"},
      {canary_phase::progressing, "Progressing"}, {canary_phase::waiting_promotion, "WaitingPromotion"},
      {canary_phase::promoting, "Promoting"},     {canary_phase::finalising, "Finalising"},
      {canary_phase::succeeded, "Succeeded"},     {canary_phase::failed, "Failed"}};
  for (const auto& [phase, name] : all) {
    EXPECT_EQ(phase_name(phase), name);
    EXPECT_EQ(phase_from_name(name), phase);
    std::ostringstream out;
    out << phase;
    EXPECT_EQ(out.str(), name);
  }
  for (std::string_view other : {"", "progressing", "Finalizing", "Terminating", "Succeeded "})
    EXPECT_FALSE(phase_from_name(other)) << other;
}
