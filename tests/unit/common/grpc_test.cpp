// gRPC's pieces a proxy reads: which requests are gRPC, grpc-timeout, statuses and their names,
// and the status of a local reply.
#include "common/grpc.hpp"

#include <gtest/gtest.h>

using namespace vane;
using namespace std::chrono_literals;

TEST(Grpc, ContentTypesAreGrpcButNotGrpcWeb) {
  EXPECT_TRUE(is_grpc_content_type("application/grpc"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc+proto"));
  EXPECT_TRUE(is_grpc_content_type("Application/GRPC;charset=utf-8"));
  EXPECT_FALSE(is_grpc_content_type("application/grpc-web"));
  EXPECT_FALSE(is_grpc_content_type("application/json"));
  EXPECT_FALSE(is_grpc_content_type("application/grp"));
}

TEST(Grpc, TimeoutsFollowTheSpec) {
  EXPECT_EQ(parse_grpc_timeout("1S"), std::chrono::nanoseconds(1s));
  EXPECT_EQ(parse_grpc_timeout("250m"), std::chrono::nanoseconds(250ms));
  EXPECT_EQ(parse_grpc_timeout("2H"), std::chrono::nanoseconds(2h));
  EXPECT_EQ(parse_grpc_timeout("99999999n"), std::chrono::nanoseconds(99999999));
  EXPECT_FALSE(parse_grpc_timeout("123456789S"));  // 9 digits
  EXPECT_FALSE(parse_grpc_timeout("10"));
  EXPECT_FALSE(parse_grpc_timeout("S"));
  EXPECT_FALSE(parse_grpc_timeout("1x"));
  EXPECT_FALSE(parse_grpc_timeout("-1S"));
}

TEST(Grpc, StatusesNamesAndLocalReplies) {
  EXPECT_EQ(parse_grpc_status("0"), 0u);
  EXPECT_EQ(parse_grpc_status("14"), 14u);
  EXPECT_EQ(parse_grpc_status("99"), 2u);  // out of range: UNKNOWN
  EXPECT_FALSE(parse_grpc_status("abc"));
  EXPECT_FALSE(parse_grpc_status(""));
  EXPECT_EQ(parse_grpc_code("deadline-exceeded"), 4u);
  EXPECT_EQ(parse_grpc_code("UNAVAILABLE"), 14u);
  EXPECT_EQ(parse_grpc_code("16"), 16u);
  EXPECT_FALSE(parse_grpc_code("17"));
  EXPECT_FALSE(parse_grpc_code("sometimes"));
  EXPECT_EQ(grpc_code_name(13), "INTERNAL");
  EXPECT_EQ(grpc_status_for_local_reply(504), 4u);  // a timeout: DEADLINE_EXCEEDED
  EXPECT_EQ(grpc_status_for_local_reply(503), 14u);
  EXPECT_EQ(grpc_status_for_local_reply(404), 12u);
  EXPECT_EQ(grpc_status_for_local_reply(413), 8u);
  EXPECT_EQ(grpc_status_for_http(500), 2u);
  EXPECT_TRUE(grpc_default_failure(13));
  EXPECT_FALSE(grpc_default_failure(5));
  EXPECT_FALSE(grpc_default_failure(0));
}
