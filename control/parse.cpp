#include "control/parse.hpp"

#include <fmt/format.h>

#include <boost/json/parse.hpp>
#include <charconv>
#include <cmath>
#include <limits>

namespace vane::control {

namespace json = boost::json;

std::string excerpt(std::string_view body) {
  constexpr std::size_t max = 60;
  std::string out;
  for (char c : body.substr(0, max)) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '.' : c;
  if (body.size() > max) out += "...";
  return out;
}

parsed<json::value> parse_json(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return parsed<json::value>::fail("empty body");
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return parsed<json::value>::fail(fmt::format("not JSON ({}): {}", ec.message(), excerpt(body)));
  return parsed<json::value>{std::move(v), {}};
}

parsed<json::object> parse_json_object(std::string_view body) {
  auto v = parse_json(body);
  if (!v) return parsed<json::object>::fail(std::move(v.why));
  if (!v.value->is_object())
    return parsed<json::object>::fail(fmt::format("not a JSON object but {}: {}", kind_of(*v.value), excerpt(body)));
  return parsed<json::object>{std::move(v.value->as_object()), {}};
}

const json::object* member_object(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? v->if_object() : nullptr;
}

const json::array* member_array(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? v->if_array() : nullptr;
}

std::optional<std::string_view> member_string(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string_view(v->get_string());
}

std::optional<bool> member_bool(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_bool()) return std::nullopt;
  return v->get_bool();
}

std::optional<double> as_number(const json::value& v) {
  double d = 0;
  if (v.is_int64())
    d = static_cast<double>(v.get_int64());
  else if (v.is_uint64())
    d = static_cast<double>(v.get_uint64());
  else if (v.is_double())
    d = v.get_double();
  else
    return std::nullopt;
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::optional<std::uint64_t> as_count(const json::value& v) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64()) return v.get_int64() >= 0 ? std::optional<std::uint64_t>(v.get_int64()) : std::nullopt;
  if (v.is_double()) {
    double d = v.get_double();
    if (std::isfinite(d) && d >= 0 && d < 9007199254740992.0 && std::floor(d) == d)
      return static_cast<std::uint64_t>(d);
  }
  return std::nullopt;
}

std::optional<std::int64_t> as_integer(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64())
    return v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
               ? std::optional<std::int64_t>(static_cast<std::int64_t>(v.get_uint64()))
               : std::nullopt;
  if (v.is_double()) {
    double d = v.get_double();
    if (std::isfinite(d) && std::fabs(d) < 9007199254740992.0 && std::floor(d) == d)
      return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::optional<double> number_from_text(std::string_view text) {
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text == "+Inf" || text == "Inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf") return -std::numeric_limits<double>::infinity();
  if (text.starts_with('+')) text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  double d = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (end != text.data() + text.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) {
    // Too large or too small for a double: what Go's ParseFloat gives, ±Inf or 0.
    bool negative = text.front() == '-';
    auto e = text.find_first_of("eE");
    bool tiny = e != std::string_view::npos && text.substr(e + 1).starts_with('-');
    if (tiny) return negative ? -0.0 : 0.0;
    return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  if (ec != std::errc()) return std::nullopt;
  return d;
}

std::string_view kind_of(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

}  // namespace vane::control
