#include "filters/fallback/fallback.hpp"

#include <gtest/gtest.h>

namespace vane {
namespace {

const fallback_request get{true, false, false};

TEST(Fallback, EachConfiguredCauseFallsBack) {
  const fallback_on all;
  EXPECT_TRUE(decide_fallback(all, {retry_cause::connect_failure, 502}, get));
  EXPECT_TRUE(decide_fallback(all, {retry_cause::reset, 502}, get));
  EXPECT_TRUE(decide_fallback(all, {retry_cause::timeout, 504}, get));
  EXPECT_TRUE(decide_fallback(all, {retry_cause::status, 503}, get));
  EXPECT_TRUE(decide_fallback(all, {retry_cause::status, 500}, get));
}

TEST(Fallback, OnlyTheCausesNamed) {
  const fallback_on only_5xx{false, false, true, false};
  EXPECT_FALSE(decide_fallback(only_5xx, {retry_cause::connect_failure, 502}, get));
  EXPECT_FALSE(decide_fallback(only_5xx, {retry_cause::reset, 502}, get));
  EXPECT_FALSE(decide_fallback(only_5xx, {retry_cause::timeout, 504}, get));
  EXPECT_TRUE(decide_fallback(only_5xx, {retry_cause::status, 599}, get));
  const fallback_on connect_only{true, false, false, false};
  EXPECT_TRUE(decide_fallback(connect_only, {retry_cause::connect_failure, 503}, get));
  EXPECT_FALSE(decide_fallback(connect_only, {retry_cause::status, 503}, get));
}

TEST(Fallback, AnAnswerBelow500IsTheAnswer) {
  EXPECT_FALSE(decide_fallback({}, {retry_cause::status, 404}, get));
  EXPECT_FALSE(decide_fallback({}, {retry_cause::status, 429}, get));
}

TEST(Fallback, NonIdempotentOnlyWhenNothingWasSent) {
  const fallback_request post{false, true, true};
  EXPECT_TRUE(decide_fallback({}, {retry_cause::connect_failure, 502}, post));
  EXPECT_FALSE(decide_fallback({}, {retry_cause::status, 503}, post));
  EXPECT_FALSE(decide_fallback({}, {retry_cause::reset, 502}, post));
  EXPECT_FALSE(decide_fallback({}, {retry_cause::timeout, 504}, post));
}

TEST(Fallback, ABodyMustBeKeptWhole) {
  const fallback_request put_kept{true, true, true};
  const fallback_request put_lost{true, true, false};
  EXPECT_TRUE(decide_fallback({}, {retry_cause::status, 503}, put_kept));
  EXPECT_FALSE(decide_fallback({}, {retry_cause::status, 503}, put_lost));
  EXPECT_FALSE(decide_fallback({}, {retry_cause::reset, 502}, put_lost));
  EXPECT_TRUE(decide_fallback({}, {retry_cause::connect_failure, 502}, put_lost));  // the body is still unread
}

// A gRPC call (a POST) that ended at once with a status `on` names (none by default), its body kept whole.
TEST(Fallback, GrpcCallsByTheirStatusWhateverTheirMethod) {
  const fallback_request call_kept{false, true, true};
  const fallback_request call_lost{false, true, false};
  EXPECT_FALSE(decide_grpc_fallback({}, 14, call_kept));
  fallback_on unavailable;
  unavailable.grpc = 1U << 14;
  EXPECT_TRUE(decide_grpc_fallback(unavailable, 14, call_kept));
  EXPECT_FALSE(decide_grpc_fallback(unavailable, 14, call_lost));
  EXPECT_FALSE(decide_grpc_fallback(unavailable, 13, call_kept));
  EXPECT_FALSE(decide_grpc_fallback(unavailable, 40, call_kept));
}

}  // namespace
}  // namespace vane
