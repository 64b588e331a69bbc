#pragma once
// A canary's phase (Flagger's CanaryPhase), with its one name table: the
// names are what the state file, the API, the metrics and the event webhooks
// say, exactly as Flagger writes them.
#include <optional>
#include <ostream>
#include <string_view>

namespace vane::control {

enum class canary_phase {
  initialized,
  waiting,
  progressing,
  waiting_promotion,
  promoting,
  finalising,
  succeeded,
  failed
};

// "Initialized", "Waiting", "Progressing", "WaitingPromotion", "Promoting", "Finalising", "Succeeded", "Failed".
std::string_view phase_name(canary_phase p);
// The phase of a name; nullopt for any other text.
std::optional<canary_phase> phase_from_name(std::string_view name);

inline std::ostream& operator<<(std::ostream& out, canary_phase p) { return out << phase_name(p); }

}  // namespace vane::control
