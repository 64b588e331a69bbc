#include "control/cli.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

#include "control/parse.hpp"
#include "control/phase.hpp"

namespace vane::control {

namespace json = boost::json;

namespace {

std::string text(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// A number as an integer, whatever its JSON type (12.5 -> 12); 0 for anything else (never throws).
std::int64_t integer(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (auto n = as_integer(*v)) return *n;
  const auto d = as_number(*v);
  return d && std::fabs(*d) < 9e18 ? static_cast<std::int64_t>(*d) : 0;
}

std::string weight_bar(std::int64_t weight) {
  weight = std::clamp<std::int64_t>(weight, 0, 100);
  auto full = static_cast<std::size_t>(weight / 5);
  return "[" + std::string(full, '#') + std::string(20 - full, '-') + "]";
}

std::string terse(double v) {
  if (std::fabs(v) >= 100) return fmt::format("{:.0f}", v);
  if (std::fabs(v) >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

bool terminal(const std::string& phase) {
  auto p = phase_from_name(phase);
  return p == canary_phase::succeeded || p == canary_phase::failed;
}

bool initialized(const std::string& phase) { return phase_from_name(phase) == canary_phase::initialized; }

// "guard tripped on 2/3 proxies (64.00% errors)" when a proxy's guard on the canary has tripped; "" otherwise.
std::string guard_text(const json::object& status) {
  const auto* g = status.if_contains("guard");
  if (!g || !g->is_object()) return "";
  const auto& o = g->get_object();
  const auto* tripped = o.if_contains("tripped_proxies");
  const auto* proxies = o.if_contains("proxies");
  const auto* rate = o.if_contains("error_percent");
  if (!tripped || !tripped->is_number() || tripped->to_number<double>() <= 0) return "";
  return fmt::format("guard tripped on {:.0f}/{:.0f} proxies ({:.2f}% errors)", tripped->to_number<double>(),
                     proxies && proxies->is_number() ? proxies->to_number<double>() : 0.0,
                     rate && rate->is_number() ? rate->to_number<double>() : 0.0);
}

}  // namespace

std::string status_table(const json::value& answer) {
  std::vector<const json::object*> rows;
  if (const auto* o = answer.if_object()) {
    if (const auto* all = o->if_contains("canaries")) {
      if (const auto* a = all->if_array())
        for (const auto& c : *a)
          if (const auto* row = c.if_object()) rows.push_back(row);
    } else {
      rows.push_back(o);
    }
  }
  std::string out = fmt::format("{:<24} {:<17} {:<29} {:<7} {:<6} {:<13} {}\n", "NAME", "PHASE", "WEIGHT", "FAILED",
                                "ITER", "TICK", "LAST EVENT");
  for (const auto* c : rows) {
    auto weight = integer(*c, "canary_weight");
    std::string failed = fmt::format("{}/{}", integer(*c, "failed_checks"), integer(*c, "threshold"));
    const auto* events = c->if_contains("events");
    std::string last =
        events && events->is_array() && !events->as_array().empty() && events->as_array().back().is_string()
            ? std::string(events->as_array().back().as_string())
            : std::string();
    // The watchdog: how long ago the analysis loop last ended a tick; "stalled" past 3 intervals in a run.
    std::string tick = "-";
    if (const auto* ago = c->if_contains("last_tick_seconds_ago"); ago && ago->is_number()) {
      const auto* stalled = c->if_contains("stalled");
      bool late = stalled && stalled->is_bool() && stalled->get_bool();
      tick = fmt::format("{}{:.0f}s{}", late ? "stalled " : "", ago->to_number<double>(), late ? "" : " ago");
    }
    out +=
        fmt::format("{:<24} {:<17} {} {:>4}%  {:<7} {:<6} {:<13} {}\n", text(*c, "name") + "." + text(*c, "namespace"),
                    text(*c, "phase"), weight_bar(weight), weight, failed, integer(*c, "iterations"), tick, last);
    if (std::string why = text(*c, "reason"); !why.empty()) out += "    readings missing: " + why + "\n";
    if (std::string g = guard_text(*c); !g.empty()) out += "    " + g + "\n";
  }
  return out;
}

std::string progress_line(const json::object& status) {
  auto weight = integer(status, "canary_weight");
  std::string line = fmt::format("{}.{}  {:<16} {} {:>3}%", text(status, "name"), text(status, "namespace"),
                                 text(status, "phase"), weight_bar(weight), weight);
  if (const auto* metrics = status.if_contains("metrics"); metrics && metrics->is_object()) {
    const auto& m = metrics->as_object();
    auto value = [&](std::string_view name) -> const json::value* {
      const auto* v = m.if_contains(name);
      return v && v->is_number() ? v : nullptr;
    };
    if (const auto* v = value("request-success-rate")) line += fmt::format("  success {:.2f}%", v->to_number<double>());
    if (const auto* v = value("request-duration")) line += fmt::format("  p99 {}ms", terse(v->to_number<double>()));
    for (const auto& [name, v] : m)
      if (v.is_number() && name != "request-success-rate" && name != "request-duration")
        line += fmt::format("  {} {}", std::string_view(name), terse(v.to_number<double>()));
  }
  line += fmt::format("  failed {}/{}", integer(status, "failed_checks"), integer(status, "threshold"));
  if (const auto* u = status.if_contains("unreachable_proxies"); u && u->is_array() && !u->as_array().empty())
    line += fmt::format("  unreachable {}", u->as_array().size());
  if (std::string g = guard_text(status); !g.empty()) line += "  " + g;
  return line;
}

std::string progress_key(const json::object& status) {
  return fmt::format("{} {} {}", text(status, "phase"), integer(status, "canary_weight"),
                     integer(status, "failed_checks"));
}

std::vector<std::string> canary_watch::new_events(const json::object& status) {
  std::vector<std::string> all;
  if (const auto* events = status.if_contains("events"); events && events->is_array())
    for (const auto& e : events->as_array())
      if (e.is_string()) all.emplace_back(e.as_string());
  std::size_t from = 0;
  if (!last_event_.empty()) {
    // Events carry millisecond timestamps; the last one printed is found from the end.
    for (std::size_t i = all.size(); i-- > 0;)
      if (all[i] == last_event_) {
        from = i + 1;
        break;
      }
  }
  bool first = last_event_.empty() && !shown_any_;
  shown_any_ = true;
  if (!all.empty()) last_event_ = all.back();
  std::string phase = text(status, "phase");
  if (first && (terminal(phase) || initialized(phase))) return {};  // an ended run's history: only what comes next
  return {all.begin() + static_cast<std::ptrdiff_t>(std::min(from, all.size())), all.end()};
}

bool canary_watch::finished(const json::object& status) {
  std::string phase = text(status, "phase");
  std::string transition = text(status, "last_transition");
  if (first_) {
    first_ = false;
    first_transition_ = transition;
  }
  if (!terminal(phase) && !initialized(phase) && !phase.empty()) seen_active_ = true;
  return terminal(phase) && (seen_active_ || transition != first_transition_);
}

}  // namespace vane::control
