// The HTTP/2 sessions' wake-ups (proxy/http2/wakeup.hpp): a notify is never
// lost, a deadline ends a sleep, and the worker's one timer follows the
// earliest deadline as sleeps come and go.
#include "proxy/http2/wakeup.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>

using namespace vane::proxy;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

using clock_type = std::chrono::steady_clock;

// Runs one wait and keeps what it returned.
task<void> sleep_on(wakeup& w, clock_type::time_point until, std::optional<bool>& out) { out = co_await w.wait(until); }

// The same, and notes `i` in `order` when it ends.
task<void> sleep_and_note(wakeup& w, clock_type::time_point until, std::optional<bool>& out, std::vector<int>& order,
                          int i) {
  out = co_await w.wait(until);
  order.push_back(i);
}

// Runs `ctx` until `done()` or 20 s pass (a bound, not a timing: every case ends long before).
template <class Done>
void run_until(asio::io_context& ctx, Done done) {
  const auto stop = clock_type::now() + 20s;
  while (!done() && clock_type::now() < stop) {
    ctx.restart();
    ctx.run_for(10ms);
  }
}

}  // namespace

TEST(Wakeup, ANotifyBeforeTheWaitIsNotLost) {
  asio::io_context ctx;
  wakeup w(ctx.get_executor());
  w.notify();
  std::optional<bool> woken;
  asio::co_spawn(ctx, sleep_on(w, clock_type::now() + 1h, woken), asio::detached);
  run_until(ctx, [&] { return woken.has_value(); });
  EXPECT_EQ(woken, true);
  EXPECT_EQ(asio::use_service<wake_deadlines>(ctx).sleeping(), 0U);
}

TEST(Wakeup, ANotifyWakesASleeperAndTakesItsDeadlineAway) {
  asio::io_context ctx;
  wakeup w(ctx.get_executor());
  std::optional<bool> woken;
  asio::co_spawn(ctx, sleep_on(w, clock_type::now() + 1h, woken), asio::detached);
  ctx.poll();  // it sleeps now
  EXPECT_FALSE(woken.has_value());
  auto& deadlines = asio::use_service<wake_deadlines>(ctx);
  EXPECT_EQ(deadlines.sleeping(), 1U);
  w.notify();
  EXPECT_FALSE(woken.has_value());  // resumed through the executor, not inside notify()
  EXPECT_EQ(deadlines.sleeping(), 0U);
  run_until(ctx, [&] { return woken.has_value(); });
  EXPECT_EQ(woken, true);
}

TEST(Wakeup, TheEarliestDeadlineEndsItsSleepWhateverOrderTheyCameIn) {
  asio::io_context ctx;
  wakeup late(ctx.get_executor()), early(ctx.get_executor()), none(ctx.get_executor());
  std::optional<bool> late_woken, early_woken, none_woken;
  asio::co_spawn(ctx, sleep_on(late, clock_type::now() + 1h, late_woken), asio::detached);
  asio::co_spawn(ctx, sleep_on(none, clock_type::time_point::max(), none_woken), asio::detached);
  ctx.poll();
  // A sooner deadline after a later one: the timer must be re-armed for it.
  asio::co_spawn(ctx, sleep_on(early, clock_type::now() + 20ms, early_woken), asio::detached);
  run_until(ctx, [&] { return early_woken.has_value(); });
  EXPECT_EQ(early_woken, false);  // its deadline passed
  EXPECT_FALSE(late_woken.has_value());
  EXPECT_FALSE(none_woken.has_value());
  EXPECT_EQ(asio::use_service<wake_deadlines>(ctx).sleeping(), 1U);  // the one with no deadline is not in the heap
  none.notify();
  late.notify();
  run_until(ctx, [&] { return late_woken.has_value() && none_woken.has_value(); });
  EXPECT_EQ(late_woken, true);
  EXPECT_EQ(none_woken, true);
}

TEST(Wakeup, ManyDeadlinesEndInTheirOrderWhileOthersAreNotified) {
  asio::io_context ctx;
  constexpr int n = 40;
  std::vector<std::unique_ptr<wakeup>> ws;
  std::vector<std::optional<bool>> woken(n);
  std::vector<int> order;
  std::vector<clock_type::time_point> untils;
  const auto now = clock_type::now();
  for (int i = 0; i < n; ++i) {
    ws.push_back(std::make_unique<wakeup>(ctx.get_executor()));
    // Odd ones far away (notified below), even ones soon, in a shuffled order.
    untils.push_back(i % 2 ? now + 1h : now + std::chrono::milliseconds(20 + (i * 7) % n));
    asio::co_spawn(ctx, sleep_and_note(*ws[i], untils[i], woken[i], order, i), asio::detached);
  }
  ctx.poll();
  // (On a slow machine some soon deadlines may have passed already: those sleep no more.)
  auto ended = [&] {
    std::size_t k = 0;
    for (const auto& w : woken) k += w.has_value();
    return k;
  };
  auto& deadlines = asio::use_service<wake_deadlines>(ctx);
  EXPECT_EQ(deadlines.sleeping(), static_cast<std::size_t>(n) - ended());
  for (int i = 1; i < n; i += 4) ws[i]->notify();  // some of the far ones, out of the heap's middle
  EXPECT_EQ(deadlines.sleeping(), static_cast<std::size_t>(n - n / 4) - ended());
  run_until(ctx, [&] {
    for (int i = 0; i < n; i += 2)
      if (!woken[i]) return false;
    return true;
  });
  for (int i = 0; i < n; ++i) {
    if (i % 2 == 0)
      EXPECT_EQ(woken[i], false) << i;
    else if (i % 4 == 1)
      EXPECT_EQ(woken[i], true) << i;
    else
      EXPECT_FALSE(woken[i].has_value()) << i;
  }
  EXPECT_EQ(deadlines.sleeping(), static_cast<std::size_t>(n / 4));
  // The deadlines ended in their order (the notified ones ended before any).
  std::vector<int> by_deadline;
  for (int i : order)
    if (i % 2 == 0) by_deadline.push_back(i);
  ASSERT_EQ(by_deadline.size(), static_cast<std::size_t>(n / 2));
  for (std::size_t k = 1; k < by_deadline.size(); ++k)
    EXPECT_LT(untils[by_deadline[k - 1]], untils[by_deadline[k]]) << k;
  for (int i = 3; i < n; i += 4) ws[i]->notify();
  run_until(ctx, [&] { return deadlines.sleeping() == 0 && woken[n - 1].has_value(); });
  EXPECT_EQ(woken[n - 1], true);
}

namespace {

// Sleeps on `mine`, then wakes `next` (if any) and counts.
task<void> relay_on(wakeup& mine, wakeup* next, int& woken) {
  co_await mine.wait();
  ++woken;
  if (next) next->notify();
}

}  // namespace

// The woken are resumed by one posted handler per batch; a coroutine that
// wakes another while its batch runs has it resumed by the next batch.
TEST(Wakeup, WakeUpsMadeWhileABatchResumesAreResumedToo) {
  asio::io_context ctx;
  constexpr int n = 50;
  std::vector<std::unique_ptr<wakeup>> ws;
  ws.reserve(n);
  for (int i = 0; i < n; ++i) ws.push_back(std::make_unique<wakeup>(ctx.get_executor()));
  int woken = 0;
  for (int i = 0; i < n; ++i)
    asio::co_spawn(ctx, relay_on(*ws[i], i + 1 < n ? ws[i + 1].get() : nullptr, woken), asio::detached);
  ctx.poll();
  EXPECT_EQ(woken, 0);
  ws[0]->notify();  // each wakes the next
  run_until(ctx, [&] { return woken == n; });
  EXPECT_EQ(woken, n);
  // Several at once, in one batch.
  int again = 0;
  for (int i = 0; i < n; ++i) asio::co_spawn(ctx, relay_on(*ws[i], nullptr, again), asio::detached);
  ctx.poll();
  for (int i = n - 1; i >= 0; --i) ws[i]->notify();
  run_until(ctx, [&] { return again == n; });
  EXPECT_EQ(again, n);
}

namespace {

task<void> hold_while_asleep(wakeup& w, std::shared_ptr<int> /*keep*/) { co_await w.wait(); }

}  // namespace

// An io_context that goes with coroutines asleep on wakeups destroys them
// (their frames, and what they hold), as it destroys the operations Asio
// holds: nothing leaks at a worker's end.
TEST(Wakeup, CoroutinesAsleepWhenTheIoContextGoesAreDestroyed) {
  auto kept = std::make_shared<int>(0);
  const std::weak_ptr<int> watch = kept;
  auto kept_too = std::make_shared<int>(0);
  const std::weak_ptr<int> watch_too = kept_too;
  {
    std::optional<wakeup> outliving;  // (made on the io_context, destroyed after it)
    asio::io_context ctx;
    outliving.emplace(ctx.get_executor());
    wakeup with_deadline(ctx.get_executor()), gone_first(ctx.get_executor());
    asio::co_spawn(ctx, hold_while_asleep(*outliving, std::move(kept)), asio::detached);
    std::optional<bool> woken;
    asio::co_spawn(ctx, sleep_on(with_deadline, clock_type::now() + 1h, woken), asio::detached);
    asio::co_spawn(ctx, hold_while_asleep(gone_first, std::move(kept_too)), asio::detached);
    ctx.poll();
    EXPECT_FALSE(watch.expired());
    EXPECT_FALSE(watch_too.expired());
  }
  EXPECT_TRUE(watch.expired());
  EXPECT_TRUE(watch_too.expired());
}
