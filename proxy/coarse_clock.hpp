#pragma once
// The monotonic clock as of the kernel's last tick, for times that only
// deadlines and idle ages compare (seconds, not microseconds): a vDSO read
// of CLOCK_MONOTONIC_COARSE, with no time-stamp counter read and no
// conversion, where steady_clock::now() (CLOCK_MONOTONIC) does both. Ten
// clock reads per proxied request cost about 1% of the proxy's CPU in a
// profile; the deadlines' and the pool's are these. Same timebase as
// steady_clock, so the two compare; it lags by at most one tick
// (coarse_resolution()), which a deadline adds so that it never comes early.
#include <chrono>
#include <ctime>

namespace vane::proxy {

inline std::chrono::steady_clock::time_point coarse_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

inline std::chrono::steady_clock::duration coarse_resolution() noexcept {
  static const std::chrono::steady_clock::duration r = [] {
    timespec ts{};
    ::clock_getres(CLOCK_MONOTONIC_COARSE, &ts);
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                                           std::chrono::nanoseconds(ts.tv_nsec));
  }();
  return r;
}

}  // namespace vane::proxy
