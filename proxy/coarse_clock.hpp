#pragma once
// The monotonic clock as of the kernel's last tick, for times that only
// deadlines and idle ages compare (seconds, not microseconds): a vDSO read
// of CLOCK_MONOTONIC_COARSE, with no time-stamp counter read and no
// conversion, where steady_clock::now() (CLOCK_MONOTONIC) does both. Ten
// clock reads per proxied request cost about 1% of the proxy's CPU in a
// profile; the deadlines' and the pool's are these.
//
// Same timebase as steady_clock, so the two compare, and never ahead of it.
// It lags by up to two ticks (the timekeeper advances it in whole tick
// intervals and carries the rest over), so coarse_slack() is two ticks: a
// deadline that adds it does not come before steady_clock::now() + d. (Not
// quite: when the CPU that keeps the time misses ticks, a stalled virtual
// machine, the lag grows by what it missed until another takes over, and a
// deadline may come that much early; docs/configuration.md says so.)
#include <chrono>
#include <ctime>

namespace vane::proxy {

inline std::chrono::steady_clock::duration duration_of(const timespec& ts) noexcept {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                                         std::chrono::nanoseconds(ts.tv_nsec));
}

inline std::chrono::steady_clock::time_point coarse_now() noexcept {
  timespec ts{};
  if (::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) return std::chrono::steady_clock::now();
  return std::chrono::steady_clock::time_point(duration_of(ts));
}

inline std::chrono::steady_clock::duration coarse_slack() noexcept {
  static const std::chrono::steady_clock::duration slack = [] {
    timespec ts{};
    std::chrono::steady_clock::duration tick = std::chrono::milliseconds(10);  // HZ=100, if the kernel will not say
    if (::clock_getres(CLOCK_MONOTONIC_COARSE, &ts) == 0 && duration_of(ts).count() > 0) tick = duration_of(ts);
    return 2 * tick;
  }();
  return slack;
}

}  // namespace vane::proxy
