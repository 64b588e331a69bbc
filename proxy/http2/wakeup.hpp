#pragma once
// Wake-ups of coroutines on one worker's thread (HTTP/2 sessions, both sides).
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "proxy/executor.hpp"

namespace vane::proxy {

// One coroutine's wake-up: notify() before wait() is not lost
// (single-threaded: nothing runs between a check and a wait).
// The timer is made at the first wait that has to sleep: most of a
// stream's wake-ups are notified and never waited on, and making a timer
// costs a locked look-up of Asio's timer service.
class wakeup {
 public:
  using clock = std::chrono::steady_clock;
  explicit wakeup(const worker_executor& ex) : ex_(ex) {}
  // False when `until` passed first.
  task<bool> wait(clock::time_point until = clock::time_point::max()) {
    if (!pending_) {
      if (!timer_) timer_.emplace(ex_);
      timer_->expires_at(until);
      co_await timer_->async_wait(task_nothrow);
    }
    const bool woken = pending_;
    pending_ = false;
    co_return woken || clock::now() < until;
  }
  void notify() {
    pending_ = true;
    if (timer_) timer_->cancel();
  }

 private:
  worker_executor ex_;
  std::optional<worker_timer> timer_;
  bool pending_ = false;
};

// Any number of coroutines waiting for a change: notify_all() wakes every
// one waiting now; each checks its condition again.
class broadcast {
 public:
  using clock = std::chrono::steady_clock;
  // False when `until` passed with no change.
  task<bool> wait(const worker_executor& ex, clock::time_point until) {
    worker_timer own(ex);
    own.expires_at(until);
    const std::uint64_t seen = changes_;
    waiting_.push_back(&own);
    co_await own.async_wait(task_nothrow);
    std::erase(waiting_, &own);
    co_return changes_ != seen;
  }
  void notify_all() {
    ++changes_;
    for (worker_timer* t : waiting_) t->cancel();
  }

 private:
  std::vector<worker_timer*> waiting_;
  std::uint64_t changes_ = 0;
};

}  // namespace vane::proxy
