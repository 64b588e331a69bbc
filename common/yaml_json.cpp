#include "common/yaml_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace vane {

namespace json = boost::json;

namespace {

bool one_of(std::string_view s, std::initializer_list<std::string_view> list) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

bool all_of(std::string_view s, std::string_view allowed) {
  return !s.empty() && s.find_first_not_of(allowed) == std::string_view::npos;
}

// An integer as Go's strconv.ParseInt(s, 0, 64) reads it after Kubernetes'
// YAML reader drops the underscores: decimal, 0x hex, 0o or leading-0 octal, 0b binary.
std::optional<json::value> plain_integer(std::string_view s) {
  std::string digits;
  for (char c : s)
    if (c != '_') digits += c;
  std::string_view d = digits;
  bool negative = false;
  if (!d.empty() && (d[0] == '-' || d[0] == '+')) {
    negative = d[0] == '-';
    d.remove_prefix(1);
  }
  int base = 10;
  if (d.size() > 2 && d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
    base = 16;
    d.remove_prefix(2);
    if (!all_of(d, "0123456789abcdefABCDEF")) return std::nullopt;
  } else if (d.size() > 2 && d[0] == '0' && (d[1] == 'o' || d[1] == 'O')) {
    base = 8;
    d.remove_prefix(2);
    if (!all_of(d, "01234567")) return std::nullopt;
  } else if (d.size() > 2 && d[0] == '0' && (d[1] == 'b' || d[1] == 'B')) {
    base = 2;
    d.remove_prefix(2);
    if (!all_of(d, "01")) return std::nullopt;
  } else if (d.size() > 1 && d[0] == '0') {
    base = 8;
    if (!all_of(d, "01234567")) return std::nullopt;
  } else if (!all_of(d, "0123456789")) {
    return std::nullopt;
  }
  std::string text(d);
  errno = 0;
  char* end = nullptr;
  unsigned long long magnitude = std::strtoull(text.c_str(), &end, base);
  if (errno == ERANGE || *end != '\0') return std::nullopt;
  if (negative) {
    if (magnitude > 9223372036854775808ULL) return std::nullopt;
    return json::value(magnitude == 9223372036854775808ULL ? INT64_MIN : -static_cast<std::int64_t>(magnitude));
  }
  if (magnitude <= static_cast<unsigned long long>(INT64_MAX)) return json::value(static_cast<std::int64_t>(magnitude));
  return json::value(static_cast<std::uint64_t>(magnitude));
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? as a double (.inf and .nan have no JSON form: strings).
std::optional<json::value> plain_float(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&] {
    std::size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - from;
  };
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  std::size_t whole = digits();
  std::size_t fraction = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    fraction = digits();
  }
  if (whole == 0 && fraction == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (digits() == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  return json::value(std::strtod(std::string(s).c_str(), nullptr));
}

// What a plain (unquoted, untagged) scalar means to Kubernetes' YAML 1.1 reader.
json::value resolve_plain(const std::string& s) {
  if (one_of(s, {"", "~", "null", "Null", "NULL"})) return nullptr;
  if (one_of(s, {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})) return true;
  if (one_of(s, {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})) return false;
  if (auto i = plain_integer(s)) return *i;
  if (auto f = plain_float(s)) return *f;
  return json::value(s);
}

// A string written without quotes reads back as the same string.
bool plain_safe(std::string_view s) {
  if (s.empty() || !resolve_plain(std::string(s)).is_string()) return false;
  // YAML 1.2 readers: .inf, .nan, 0o17 and friends are not strings there either.
  if (one_of(s, {".inf", ".Inf", ".INF", "+.inf", "-.inf", ".nan", ".NaN", ".NAN", "<<", "="})) return false;
  if (s.starts_with("---") || s.starts_with("...")) return false;
  if (std::string_view("-+.0123456789").find(s[0]) != std::string_view::npos &&
      all_of(s, "0123456789abcdefoxABCDEFOX_.:+-"))
    return false;  // numbers of some reader (sexagesimal 1:20, 1_000, 0o17, 0x1F)
  const char first = s[0];
  if (std::string_view(",[]{}#&*!|>'\"%@`").find(first) != std::string_view::npos) return false;
  if ((first == '-' || first == '?' || first == ':') && (s.size() == 1 || s[1] == ' ')) return false;
  if (s.front() == ' ' || s.back() == ' ' || s.back() == ':') return false;
  if (s.find(": ") != std::string_view::npos || s.find(" #") != std::string_view::npos) return false;
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Several lines, each printable, the first not starting with a blank: a literal block (|) reads back the same.
bool literal_safe(std::string_view s) {
  if (s.find('\n') == std::string_view::npos || s.front() == ' ' || s.front() == '\t' || s.front() == '\n')
    return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\n' && c != '\t') || u == 0x7f;
  });
}

void write_string(std::string& out, std::string_view s, int indent) {
  if (plain_safe(s)) {
    out += s;
    return;
  }
  if (!literal_safe(s)) {
    out += json::serialize(json::string_view(s.data(), s.size()));  // JSON escapes are YAML double-quoted escapes
    return;
  }
  std::size_t trailing = 0;
  while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') ++trailing;
  out += trailing == 0 ? "|-" : trailing == 1 ? "|" : "|+";
  std::string_view body = s.substr(0, s.size() - trailing);
  std::size_t from = 0;
  for (;;) {
    std::size_t nl = body.find('\n', from);
    std::string_view line = body.substr(from, nl == std::string_view::npos ? std::string_view::npos : nl - from);
    out += '\n';
    if (!line.empty()) out.append(static_cast<std::size_t>(indent), ' ').append(line);
    if (nl == std::string_view::npos) break;
    from = nl + 1;
  }
  for (std::size_t i = 1; i < trailing; ++i) out += '\n';
}

void write_scalar(std::string& out, const json::value& v, int indent) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      break;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      break;
    case json::kind::int64:
      out += std::to_string(v.get_int64());
      break;
    case json::kind::uint64:
      out += std::to_string(v.get_uint64());
      break;
    case json::kind::double_: {
      std::string d = fmt::format("{}", v.get_double());
      if (d.find_first_of(".eEn") == std::string::npos) d += ".0";  // 1000.0 stays a float
      out += d;
      break;
    }
    case json::kind::string:
      write_string(out, v.get_string(), indent);
      break;
    default:
      break;
  }
}

void write_object(std::string& out, const json::object& o, int indent, bool first_inline);
void write_array(std::string& out, const json::array& a, int indent);

// A value after "key:" or "-": a block on the next lines (a mapping in a
// sequence starts on the dash's line), or on the same line.
void write_value(std::string& out, const json::value& v, int indent, bool in_sequence) {
  if (v.is_object() && !v.get_object().empty()) {
    out += in_sequence ? ' ' : '\n';
    write_object(out, v.get_object(), indent, in_sequence);
  } else if (v.is_array() && !v.get_array().empty()) {
    out += '\n';
    write_array(out, v.get_array(), indent);
  } else if (v.is_object()) {
    out += " {}\n";
  } else if (v.is_array()) {
    out += " []\n";
  } else {
    out += ' ';
    write_scalar(out, v, indent);
    out += '\n';
  }
}

// The entries of `o`; the first one's indentation already written when `first_inline`.
void write_object(std::string& out, const json::object& o, int indent, bool first_inline) {
  bool first = true;
  for (const auto& [key, value] : o) {
    if (!(first && first_inline)) out.append(static_cast<std::size_t>(indent), ' ');
    first = false;
    write_string(out, key, indent);
    out += ':';
    write_value(out, value, indent + 2, false);
  }
}

void write_array(std::string& out, const json::array& a, int indent) {
  for (const auto& item : a) {
    out.append(static_cast<std::size_t>(indent), ' ');
    out += '-';
    write_value(out, item, indent + 2, true);
  }
}

// Bounds on what aliases can build: a document nested deeper than this is an alias that holds itself
// (yaml-cpp builds such a graph), and one of more values than this is an alias bomb ("billion laughs").
constexpr int max_depth = 256;
constexpr std::size_t max_values = 1'000'000;

struct json_builder {
  yaml_reader& reader;
  std::size_t values = 0;

  std::optional<json::value> convert(const YAML::Node& node, int depth);
  // A merge key's value (YAML 1.1 "<<", which Kubernetes' reader applies and yaml-cpp does not): a map, or
  // a list of maps, whose entries are set in the map as gopkg.in/yaml.v2 (sigs.k8s.io/yaml) sets them: at
  // the key's place, over the keys before it; of a list, the earlier map's entry wins.
  bool merge(const YAML::Node& from, json::object& into, int depth);
};

bool json_builder::merge(const YAML::Node& from, json::object& into, int depth) {
  std::vector<YAML::Node> sources;
  if (from.IsMap()) {
    sources.push_back(from);
  } else if (from.IsSequence()) {
    for (const auto& item : from) sources.push_back(item);
  } else {
    reader.error(from, "a merge key (<<) takes a map or a list of maps");
    return false;
  }
  json::object merged;
  for (auto it = sources.rbegin(); it != sources.rend(); ++it) {  // (the earlier maps last: theirs win)
    if (!it->IsMap()) {
      reader.error(*it, "a merge key (<<) takes a map or a list of maps");
      return false;
    }
    auto v = convert(*it, depth + 1);
    if (!v) return false;
    for (auto& [key, value] : v->as_object()) merged.insert_or_assign(key, std::move(value));
  }
  for (auto& [key, value] : merged) into.insert_or_assign(key, std::move(value));
  return true;
}

std::optional<json::value> json_builder::convert(const YAML::Node& node, int depth) {
  if (depth > max_depth || ++values > max_values) {
    reader.error(node, depth > max_depth ? "nested too deep (an alias that holds itself?)"
                                         : "too many values (aliases repeated without bound?)");
    return std::nullopt;
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json::value(nullptr);
    case YAML::NodeType::Scalar:
      // "?" is a plain scalar; "!" a quoted or block one; an explicit tag is read as the plain text would be.
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return json::value(node.Scalar());
      return resolve_plain(node.Scalar());
    case YAML::NodeType::Sequence: {
      json::array a;
      a.reserve(node.size());
      for (const auto& item : node) {
        auto v = convert(item, depth + 1);
        if (!v) return std::nullopt;
        a.push_back(std::move(*v));
      }
      return json::value(std::move(a));
    }
    case YAML::NodeType::Map: {
      json::object o;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          reader.error(kv.first, "keys must be plain names");
          return std::nullopt;
        }
        if (kv.first.Scalar() == "<<" && kv.first.Tag() == "?") {  // (a quoted "<<" is a plain key)
          if (!merge(kv.second, o, depth)) return std::nullopt;
          continue;
        }
        auto v = convert(kv.second, depth + 1);
        if (!v) return std::nullopt;
        o.insert_or_assign(kv.first.Scalar(), std::move(*v));
      }
      return json::value(std::move(o));
    }
  }
  return json::value(nullptr);
}

}  // namespace

std::optional<json::value> yaml_to_json(const YAML::Node& node, yaml_reader& reader) {
  json_builder b{reader};
  return b.convert(node, 0);
}

std::string json_to_yaml(const json::value& value) {
  std::string out;
  if (value.is_object() && !value.get_object().empty()) {
    write_object(out, value.get_object(), 0, false);
  } else if (value.is_array() && !value.get_array().empty()) {
    write_array(out, value.get_array(), 0);
  } else if (value.is_object()) {
    out = "{}\n";
  } else if (value.is_array()) {
    out = "[]\n";
  } else {
    write_scalar(out, value, 2);  // a block scalar's lines indented under nothing
    out += '\n';
  }
  return out;
}

}  // namespace vane
