#pragma once
// Wake-ups of coroutines on one worker's thread (HTTP/2 sessions, both sides).
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "proxy/executor.hpp"

namespace vane::proxy {

class wakeup;

// The deadlines of the wakeups sleeping on one io_context (a service of it:
// one per worker): a binary min-heap, and one Asio timer armed at the
// earliest. Every HTTP/2 request sleeps on a wakeup with a deadline or two
// (the upstream's answer, the client's window); with an Asio timer each,
// every sleep took the reactor's mutex twice (arm, cancel) and a look-up of
// the timer service per timer made. Here a sleep is a heap insert and
// removal on the worker's own thread; the timer is re-armed only when a
// deadline comes before the one it is armed for, and a timer that fires
// early (its wakeup was notified) finds nothing due and re-arms for what is
// left. Asio offers no such queue to hold a handler until a time or a call.
//
// The coroutines woken are resumed together, by one handler posted for all
// that were woken since it last ran: a post per wake-up took the
// scheduler's mutex and an operation allocated for each (about 1k
// instructions per HTTP/2 request).
class wake_deadlines : public boost::asio::execution_context::service {
 public:
  using clock = std::chrono::steady_clock;
  using key_type = wake_deadlines;
  static inline boost::asio::execution_context::id id;  // NOLINT(readability-identifier-naming): Asio's name

  explicit wake_deadlines(boost::asio::io_context& ctx)
      : boost::asio::execution_context::service(ctx), ex_(ctx.get_executor()), timer_(ex_) {}
  const worker_executor& executor() const noexcept { return ex_; }
  std::size_t sleeping() const noexcept { return heap_.size(); }

 private:
  friend class wakeup;
  static constexpr std::size_t none = static_cast<std::size_t>(-1);
  using handler = boost::asio::async_result<boost::asio::use_awaitable_t<worker_executor>, void()>::handler_type;
  void shutdown() override;
  inline void ready(handler&& h);
  inline void resume_ready();
  inline void add(wakeup& w);
  inline void remove(wakeup& w);
  inline void place(std::size_t i);  // restores the heap around entry i
  inline void arm();
  inline void fire();
  inline void swap_at(std::size_t a, std::size_t b);
  inline clock::time_point at(std::size_t i) const;
  inline void link(wakeup& w);  // into sleepers_
  inline void unlink(wakeup& w);

  worker_executor ex_;
  worker_timer timer_;
  std::vector<wakeup*> heap_;
  std::vector<handler> ready_, resuming_;  // woken, to resume; being resumed
  bool resume_posted_ = false;
  bool stopped_ = false;
  // Every wakeup that holds a handler (a list through them): at shutdown
  // their coroutines are destroyed, as Asio destroys the operations it holds.
  wakeup* sleepers_ = nullptr;
  clock::time_point armed_ = clock::time_point::max();  // what the timer waits for (max: not waiting)
  std::uint64_t arming_ = 0;                            // the current wait's number: an older one's end is ignored
};

// One coroutine's wake-up: notify() before wait() is not lost
// (single-threaded: nothing runs between a check and a wait). A waiting
// coroutine's handler is held here and posted by notify() or at the
// deadline; nothing runs inside notify() (it is called from nghttp2's
// callbacks).
class wakeup {
 public:
  using clock = std::chrono::steady_clock;
  explicit wakeup(const worker_executor& ex) : deadlines_(&boost::asio::use_service<wake_deadlines>(ex.context())) {}
  explicit wakeup(wake_deadlines& d) : deadlines_(&d) {}
  ~wakeup() {
    if (index_ != wake_deadlines::none) deadlines_->remove(*this);
    if (waiter_) deadlines_->unlink(*this);
  }
  wakeup(const wakeup&) = delete;
  wakeup& operator=(const wakeup&) = delete;

  // False when `until` passed first.
  task<bool> wait(clock::time_point until = clock::time_point::max()) {
    if (!pending_) {
      until_ = until;
      if (until != clock::time_point::max()) deadlines_->add(*this);
      co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<worker_executor>&, void()>(
          [this](handler h) {
            waiter_.emplace(std::move(h));
            deadlines_->link(*this);
          },
          boost::asio::use_awaitable_t<worker_executor>{});
    }
    const bool woken = pending_;
    pending_ = false;
    co_return woken || clock::now() < until;
  }
  void notify() {
    pending_ = true;
    resume();
  }

 private:
  friend class wake_deadlines;
  using handler = wake_deadlines::handler;
  void resume() {
    if (index_ != wake_deadlines::none) deadlines_->remove(*this);
    if (!waiter_) return;
    deadlines_->unlink(*this);
    deadlines_->ready(std::move(*waiter_));
    waiter_.reset();
  }

  wake_deadlines* deadlines_;
  std::optional<handler> waiter_;
  clock::time_point until_{};
  std::size_t index_ = wake_deadlines::none;  // in the deadlines' heap
  wakeup *prev_ = nullptr, *next_ = nullptr;  // in the service's sleepers, while waiter_ holds a handler
  bool pending_ = false;
};

inline void wake_deadlines::shutdown() {
  // The io_context goes: what sleeps here is destroyed like the operations
  // Asio holds (each coroutine's frames, on its executor), and the wakeups,
  // which may outlive the service now, no longer look for their place in it.
  stopped_ = true;
  for (wakeup* w : heap_) w->index_ = none;
  heap_.clear();
  while (sleepers_) {
    wakeup& w = *sleepers_;
    unlink(w);
    w.waiter_.reset();
  }
  ready_.clear();
}

inline void wake_deadlines::link(wakeup& w) {
  w.prev_ = nullptr;
  w.next_ = sleepers_;
  if (sleepers_) sleepers_->prev_ = &w;
  sleepers_ = &w;
}

inline void wake_deadlines::unlink(wakeup& w) {
  if (w.prev_)
    w.prev_->next_ = w.next_;
  else if (sleepers_ == &w)
    sleepers_ = w.next_;
  if (w.next_) w.next_->prev_ = w.prev_;
  w.prev_ = w.next_ = nullptr;
}

inline void wake_deadlines::ready(handler&& h) {
  if (stopped_) return;  // (the handler goes here: the io_context is going)
  ready_.push_back(std::move(h));
  if (resume_posted_) return;
  resume_posted_ = true;
  boost::asio::post(ex_, [this] { resume_ready(); });
}

inline void wake_deadlines::resume_ready() {
  resume_posted_ = false;  // (those woken while these run go in the next batch)
  resuming_.swap(ready_);
  for (handler& h : resuming_) h();
  resuming_.clear();
}

inline wake_deadlines::clock::time_point wake_deadlines::at(std::size_t i) const { return heap_[i]->until_; }

inline void wake_deadlines::swap_at(std::size_t a, std::size_t b) {
  std::swap(heap_[a], heap_[b]);
  heap_[a]->index_ = a;
  heap_[b]->index_ = b;
}

inline void wake_deadlines::place(std::size_t i) {
  while (i > 0 && at(i) < at((i - 1) / 2)) {
    swap_at(i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    const std::size_t l = 2 * i + 1, r = l + 1;
    std::size_t least = i;
    if (l < heap_.size() && at(l) < at(least)) least = l;
    if (r < heap_.size() && at(r) < at(least)) least = r;
    if (least == i) return;
    swap_at(i, least);
    i = least;
  }
}

inline void wake_deadlines::add(wakeup& w) {
  w.index_ = heap_.size();
  heap_.push_back(&w);
  place(w.index_);
  if (w.until_ < armed_) arm();
}

inline void wake_deadlines::remove(wakeup& w) {
  const std::size_t i = w.index_;
  w.index_ = none;
  const std::size_t last = heap_.size() - 1;
  if (i != last) {
    heap_[i] = heap_[last];
    heap_[i]->index_ = i;
  }
  heap_.pop_back();
  if (i < heap_.size()) place(i);
  // (The timer stays armed: it finds nothing due when it fires and re-arms for the rest.)
}

inline void wake_deadlines::arm() {
  armed_ = heap_.empty() ? clock::time_point::max() : at(0);
  const std::uint64_t n = ++arming_;
  if (armed_ == clock::time_point::max()) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(armed_);  // (cancels the wait before, whose end is then ignored)
  timer_.async_wait([this, n](boost::system::error_code ec) {
    if (ec || n != arming_) return;  // cancelled (or the service is gone: shut down, not called)
    fire();
  });
}

inline void wake_deadlines::fire() {
  armed_ = clock::time_point::max();
  const auto now = clock::now();
  while (!heap_.empty() && at(0) <= now) heap_.front()->resume();  // (resume takes it off the heap)
  if (!heap_.empty()) arm();
}

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
