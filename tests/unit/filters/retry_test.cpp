#include "filters/retry/retry.hpp"

#include <gtest/gtest.h>

namespace vane {
namespace {

TEST(Retry, CausesARouteRetries) {
  retry_on defaults;
  EXPECT_TRUE(retry_wanted(defaults, retry_cause::connect_failure, 0));
  EXPECT_TRUE(retry_wanted(defaults, retry_cause::reset, 0));
  EXPECT_FALSE(retry_wanted(defaults, retry_cause::timeout, 0));
  EXPECT_FALSE(retry_wanted(defaults, retry_cause::status, 503));
  retry_on five{false, false, true, false};
  EXPECT_TRUE(retry_wanted(five, retry_cause::status, 500));
  EXPECT_TRUE(retry_wanted(five, retry_cause::timeout, 0));
  EXPECT_TRUE(retry_wanted(five, retry_cause::connect_failure, 0));
  retry_on gateway{false, false, false, true};
  EXPECT_FALSE(retry_wanted(gateway, retry_cause::status, 500));
  EXPECT_TRUE(retry_wanted(gateway, retry_cause::status, 503));
  EXPECT_TRUE(is_idempotent("PUT"));
  EXPECT_FALSE(is_idempotent("POST"));
  EXPECT_FALSE(is_idempotent("PATCH"));
}

TEST(Retry, StaleConnectionIsResentOnceWithoutRetries) {
  retry_state none;  // no retries configured
  attempt_failure stale{retry_cause::reset, 502, true};
  EXPECT_EQ(decide_retry(stale, none), retry_verdict::resend_stale);
  none.resent_stale = true;
  EXPECT_EQ(decide_retry(stale, none), retry_verdict::give_up);
  retry_state with_body;
  with_body.has_body = true;
  EXPECT_EQ(decide_retry(stale, with_body), retry_verdict::give_up);
  // It failed waiting for the answer, the request sent whole: the upstream may have applied it.
  attempt_failure sent = stale;
  sent.sent = true;
  retry_state post;  // (not idempotent)
  EXPECT_EQ(decide_retry(sent, post), retry_verdict::give_up);
  retry_state get;
  get.idempotent = true;
  EXPECT_EQ(decide_retry(sent, get), retry_verdict::resend_stale);
}

TEST(Retry, RefusedStreamsAreResentUpToALimit) {
  retry_state none;
  attempt_failure refused{retry_cause::reset, 502, true, true};
  none.resent_stale = true;  // (a stale connection's resend is another matter)
  for (std::uint32_t i = 0; i < max_refused_resends; ++i) {
    none.refused_resends = i;
    EXPECT_EQ(decide_retry(refused, none), retry_verdict::resend_stale) << i;
  }
  none.refused_resends = max_refused_resends;
  EXPECT_EQ(decide_retry(refused, none), retry_verdict::give_up);
  retry_state with_body;
  with_body.has_body = true;
  EXPECT_EQ(decide_retry(refused, with_body), retry_verdict::give_up);
}

TEST(Retry, RetryNeedsAttemptsCauseSafeBodyAndMethod) {
  const retry_on gateway{false, false, false, true};
  retry_state s;
  s.on = &gateway;
  s.retries_left = 1;
  s.idempotent = true;
  EXPECT_EQ(decide_retry({retry_cause::status, 503}, s), retry_verdict::retry);
  EXPECT_EQ(decide_retry({retry_cause::status, 500}, s), retry_verdict::give_up);  // not a gateway error
  EXPECT_EQ(decide_retry({retry_cause::timeout, 504}, s), retry_verdict::retry);
  s.retries_left = 0;
  EXPECT_EQ(decide_retry({retry_cause::status, 503}, s), retry_verdict::give_up);
  s.retries_left = 1;
  s.has_body = true;
  EXPECT_EQ(decide_retry({retry_cause::status, 503}, s), retry_verdict::retry);  // body still whole
  s.body_touched = true;
  EXPECT_EQ(decide_retry({retry_cause::status, 503}, s), retry_verdict::give_up);
  s.has_body = s.body_touched = false;
  s.idempotent = false;  // a POST: only when the upstream never got it
  EXPECT_EQ(decide_retry({retry_cause::status, 503}, s), retry_verdict::give_up);
  EXPECT_EQ(decide_retry({retry_cause::connect_failure, 502}, s), retry_verdict::retry);
  s.on = nullptr;
  EXPECT_EQ(decide_retry({retry_cause::connect_failure, 502}, s), retry_verdict::give_up);
}

}  // namespace
}  // namespace vane
