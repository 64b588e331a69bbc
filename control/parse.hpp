#pragma once
// Reading what comes from outside (proxies, Prometheus, webhooks, the state
// file) without ever throwing: every reader yields the value or why there is
// none, a reason short enough for a log line and `vane-control status`. A
// legal but unexpected answer (a number where a string was expected, null, an
// HTML error page, a truncated body) is a reason, never an exception.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vane::control {

// A value read from outside, or why there is none.
template <class T>
struct parsed {
  std::optional<T> value;
  std::string why;  // set when there is no value
  explicit operator bool() const { return value.has_value(); }
  static parsed fail(std::string why) { return parsed{std::nullopt, std::move(why)}; }
};

// At most 60 characters of a body, control characters shown as '.', for reasons.
std::string excerpt(std::string_view body);

// The body as JSON: "empty body", "not JSON (<parser's word>): <excerpt>".
parsed<boost::json::value> parse_json(std::string_view body);
// The body as a JSON object ("not a JSON object: <excerpt>" otherwise).
parsed<boost::json::object> parse_json_object(std::string_view body);

// A member of a given type, or nullptr / nullopt when absent or of another type.
const boost::json::object* member_object(const boost::json::object& o, std::string_view key);
const boost::json::array* member_array(const boost::json::object& o, std::string_view key);
std::optional<std::string_view> member_string(const boost::json::object& o, std::string_view key);
std::optional<bool> member_bool(const boost::json::object& o, std::string_view key);

// A finite number (integer or double).
std::optional<double> as_number(const boost::json::value& v);
// A non-negative integer that fits in 64 bits (a double holding one exactly, below 2^53, is one too).
std::optional<std::uint64_t> as_count(const boost::json::value& v);
// A signed integer that fits in 64 bits (a double holding one exactly, below 2^53 in magnitude, is one too).
std::optional<std::int64_t> as_integer(const boost::json::value& v);

// A number written as text, whole: "12.5", "1e3", "NaN", "+Inf", "-Inf" (Prometheus's spellings).
std::optional<double> number_from_text(std::string_view text);

// The JSON type of a value in words, for reasons: "a string", "null", "an array", ...
std::string_view kind_of(const boost::json::value& v);

}  // namespace vane::control
