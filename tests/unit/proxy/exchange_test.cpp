// relay_now() and relay() (proxy/exchange): what is ready goes without a
// coroutine; where it stops, relay() goes on without losing or repeating a
// batch.
#include "proxy/exchange.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <deque>
#include <string>
#include <vector>

using namespace vane::proxy;

namespace {

// Batches given one at a time: `waits` of them only through next().
class script_source final : public body_source {
 public:
  explicit script_source(std::deque<std::string> batches, int waits = 0)
      : batches_(std::move(batches)), waits_(waits) {}
  std::optional<relay_status> poll() override {
    if (waits_ > 0) return std::nullopt;
    return take();
  }
  task<relay_status> next() override {
    --waits_;
    ++nexts;
    co_return take();
  }
  std::span<const std::string_view> pieces() const noexcept override { return {&piece_, piece_.empty() ? 0U : 1U}; }
  bool done() const noexcept override { return batches_.size() <= 1; }
  void consume() override {
    batches_.pop_front();
    piece_ = {};
    ready_ = false;
    touched_ = true;
  }
  int nexts = 0;

 private:
  relay_status take() {
    piece_ = batches_.front();
    ready_ = true;
    return relay_status::ok;
  }
  std::deque<std::string> batches_;
  std::string_view piece_;
  int waits_;
};

// Keeps what it is given; the puts numbered in `pending_at` say pending.
class script_sink final : public body_sink {
 public:
  explicit script_sink(std::vector<int> pending_at = {}) : pending_at_(std::move(pending_at)) {}
  put_result put(std::span<const std::string_view> pieces, bool last) override {
    for (auto p : pieces) got.append(p);
    ended = last;
    ++puts;
    return std::find(pending_at_.begin(), pending_at_.end(), puts) != pending_at_.end() ? put_result::pending
                                                                                        : put_result::written;
  }
  task<bool> flush() override {
    ++flushes;
    co_return true;
  }
  bool head_sent() const noexcept override { return puts > 0; }
  std::string got;
  bool ended = false;
  int puts = 0, flushes = 0;

 private:
  std::vector<int> pending_at_;
};

// One batch, then the end, which is learnt only while the sink flushes the
// batch (an HTTP/2 END_STREAM with no data, or trailers, after the DATA).
class late_end_source final : public body_source {
 public:
  std::optional<relay_status> poll() override {
    if (!taken_) {
      piece_ = "ab";
    } else if (ended) {
      piece_ = {};
    } else {
      return std::nullopt;
    }
    ready_ = true;
    return relay_status::ok;
  }
  task<relay_status> next() override { co_return poll().value_or(relay_status::read_failed); }
  std::span<const std::string_view> pieces() const noexcept override { return {&piece_, piece_.empty() ? 0U : 1U}; }
  bool done() const noexcept override { return ended; }
  void consume() override {
    taken_ = true;
    piece_ = {};
    ready_ = false;
  }
  bool ended = false;

 private:
  bool taken_ = false;
  std::string_view piece_;
};

class ending_sink final : public body_sink {
 public:
  explicit ending_sink(late_end_source& in) : in_(in) {}
  put_result put(std::span<const std::string_view> pieces, bool last) override {
    for (auto p : pieces) got.append(p);
    ended = last;
    return ++puts == 1 ? put_result::pending : put_result::written;
  }
  task<bool> flush() override {
    in_.ended = true;
    co_return true;
  }
  bool head_sent() const noexcept override { return puts > 0; }
  std::string got;
  bool ended = false;
  int puts = 0;

 private:
  late_end_source& in_;
};

relay_status finish(body_source& in, body_sink& out, const relay_progress& from) {
  boost::asio::io_context ctx;
  auto f = boost::asio::co_spawn(ctx.get_executor(), relay(in, out, from), boost::asio::use_future);
  ctx.run();
  return f.get();
}

}  // namespace

TEST(Relay, WhatIsReadyGoesWithoutWaiting) {
  script_source in({"ab", "cd", ""});
  script_sink out;
  const relay_progress p = relay_now(in, out);
  EXPECT_EQ(p.status, relay_status::ok);
  EXPECT_EQ(out.got, "abcd");
  EXPECT_TRUE(out.ended);
  EXPECT_EQ(out.puts, 3);
}

TEST(Relay, ASourceThatMustWaitStopsItAndRelayGoesOn) {
  script_source in({"ab", "cd", ""}, 1);
  script_sink out;
  const relay_progress p = relay_now(in, out);
  EXPECT_FALSE(p.status);
  EXPECT_FALSE(p.flush);
  EXPECT_EQ(out.puts, 0);  // nothing put
  EXPECT_EQ(finish(in, out, p), relay_status::ok);
  EXPECT_EQ(in.nexts, 1);
  EXPECT_EQ(out.got, "abcd");
  EXPECT_EQ(out.puts, 3);
}

TEST(Relay, ASinkThatHoldsABatchIsFlushedBeforeTheNextAndNothingIsPutTwice) {
  for (int at = 1; at <= 3; ++at) {
    SCOPED_TRACE(at);
    script_source in({"ab", "cd", ""});
    script_sink out({at});
    const relay_progress p = relay_now(in, out);
    EXPECT_FALSE(p.status);
    EXPECT_TRUE(p.flush);
    EXPECT_EQ(out.puts, at);
    EXPECT_EQ(finish(in, out, p), relay_status::ok);
    EXPECT_EQ(out.flushes, 1);
    EXPECT_EQ(out.got, "abcd");
    EXPECT_EQ(out.puts, 3);
    EXPECT_TRUE(out.ended);
  }
}

TEST(Relay, AnEndLearntWhileABatchIsFlushedIsStillPut) {
  late_end_source in;
  ending_sink out(in);
  const relay_progress p = relay_now(in, out);
  EXPECT_TRUE(p.flush);
  EXPECT_FALSE(p.last);
  EXPECT_EQ(finish(in, out, p), relay_status::ok);
  EXPECT_EQ(out.got, "ab");
  EXPECT_TRUE(out.ended);  // the sink was told the body ended (a last chunk, END_STREAM, the trailers)
  EXPECT_EQ(out.puts, 2);
}
