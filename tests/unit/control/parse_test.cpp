// Reading answers from outside without throwing: every odd shape is a reason.
#include "control/parse.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace vane::control;
namespace json = boost::json;

TEST(ControlParse, BodiesThatAreNotJsonObjectsAreReasons) {
  EXPECT_EQ(parse_json("").why, "empty body");
  EXPECT_EQ(parse_json("  \r\n").why, "empty body");
  auto html = parse_json_object("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>");
  ASSERT_FALSE(html);
  EXPECT_NE(html.why.find("not JSON"), std::string::npos) << html.why;
  EXPECT_NE(html.why.find("<!DOCTYPE html>"), std::string::npos) << html.why;
  auto truncated = parse_json_object(R"({"status":"success","da)");
  ASSERT_FALSE(truncated);
  EXPECT_NE(truncated.why.find("not JSON"), std::string::npos) << truncated.why;
  EXPECT_NE(parse_json_object("[1]").why.find("not a JSON object but an array"), std::string::npos);
  EXPECT_NE(parse_json_object("null").why.find("but null"), std::string::npos);
  EXPECT_FALSE(parse_json_object(R"({"v": NaN})"));
  EXPECT_TRUE(parse_json_object(R"({"v": 1})"));
}

TEST(ControlParse, ExcerptsAreShortAndPrintable) {
  EXPECT_EQ(excerpt("a\nb\x01"), "a.b.");
  EXPECT_EQ(excerpt(std::string(100, 'x')), std::string(60, 'x') + "...");
}

TEST(ControlParse, CountsAndNumbersOfEveryJsonType) {
  EXPECT_EQ(as_count(json::value(5)), 5u);
  EXPECT_EQ(as_count(json::value(18446744073709551615ull)), 18446744073709551615ull);
  EXPECT_EQ(as_count(json::value(3.0)), 3u);
  EXPECT_FALSE(as_count(json::value(-1)));
  EXPECT_FALSE(as_count(json::value(1.5)));
  EXPECT_FALSE(as_count(json::value(1e300)));
  EXPECT_FALSE(as_count(json::value("5")));
  EXPECT_FALSE(as_count(json::value(nullptr)));
  EXPECT_FALSE(as_count(json::value(true)));
  EXPECT_EQ(as_integer(json::value(-7)), -7);
  EXPECT_FALSE(as_integer(json::value(18446744073709551615ull)));
  EXPECT_EQ(as_number(json::value(2.5)), 2.5);
  EXPECT_FALSE(as_number(json::value("2.5")));
  json::object o{{"s", "x"}, {"n", 1}, {"b", true}, {"a", json::array{}}, {"o", json::object{}}};
  EXPECT_EQ(member_string(o, "s"), "x");
  EXPECT_FALSE(member_string(o, "n"));
  EXPECT_FALSE(member_string(o, "missing"));
  EXPECT_EQ(member_bool(o, "b"), true);
  EXPECT_FALSE(member_bool(o, "s"));
  EXPECT_TRUE(member_array(o, "a"));
  EXPECT_FALSE(member_array(o, "o"));
  EXPECT_TRUE(member_object(o, "o"));
  EXPECT_EQ(kind_of(json::value(nullptr)), "null");
  EXPECT_EQ(kind_of(json::value(1.5)), "a number");
}

TEST(ControlParse, NumbersWrittenAsTextWhole) {
  EXPECT_EQ(number_from_text("12.5"), 12.5);
  EXPECT_EQ(number_from_text("1e3"), 1000);
  EXPECT_EQ(number_from_text("-0.25"), -0.25);
  EXPECT_EQ(number_from_text("+Inf"), INFINITY);
  EXPECT_EQ(number_from_text("-Inf"), -INFINITY);
  EXPECT_TRUE(std::isnan(*number_from_text("NaN")));
  EXPECT_EQ(number_from_text("1e400"), INFINITY);  // too large for a double: Go's ParseFloat gives +Inf
  EXPECT_EQ(number_from_text("1e-400"), 0.0);
  for (const char* odd : {"", "abc", "1.5x", " 1", "1 ", "0x10", "--1", "+"})
    EXPECT_FALSE(number_from_text(odd)) << odd;
}
