#include "common/json_patch.hpp"

#include <boost/json/object.hpp>

namespace vane {

namespace json = boost::json;

std::string json_pointer_escape(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

namespace {

void operation(json::array& ops, std::string_view op, const std::string& path, const json::value* value) {
  json::object o{{"op", op}, {"path", path}};
  if (value) o["value"] = *value;
  ops.push_back(std::move(o));
}

void diff(const json::value& from, const json::value& to, const std::string& path, json::array& ops) {
  if (from == to) return;
  if (from.is_object() && to.is_object()) {
    const auto& a = from.get_object();
    const auto& b = to.get_object();
    for (const auto& [key, value] : a)
      if (!b.contains(key)) operation(ops, "remove", path + "/" + json_pointer_escape(key), nullptr);
    for (const auto& [key, value] : b) {
      const std::string at = path + "/" + json_pointer_escape(key);
      if (const auto* old = a.if_contains(key))
        diff(*old, value, at, ops);
      else
        operation(ops, "add", at, &value);
    }
    return;
  }
  if (from.is_array() && to.is_array()) {
    const auto& a = from.get_array();
    const auto& b = to.get_array();
    std::size_t prefix = 0;
    while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
    std::size_t suffix = 0;
    while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
           a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix])
      ++suffix;
    if (prefix + suffix == a.size()) {  // elements added at `prefix`
      for (std::size_t i = prefix; i < b.size() - suffix; ++i)
        operation(ops, "add", path + "/" + std::to_string(i), &b[i]);
      return;
    }
    if (prefix + suffix == b.size()) {  // elements removed at `prefix`
      for (std::size_t i = prefix; i < a.size() - suffix; ++i)
        operation(ops, "remove", path + "/" + std::to_string(prefix), nullptr);
      return;
    }
    if (a.size() == b.size()) {  // changed in place
      for (std::size_t i = prefix; i < a.size() - suffix; ++i) diff(a[i], b[i], path + "/" + std::to_string(i), ops);
      return;
    }
  }
  operation(ops, "replace", path, &to);
}

}  // namespace

json::array json_patch_diff(const json::value& from, const json::value& to) {
  json::array ops;
  diff(from, to, "", ops);
  return ops;
}

}  // namespace vane
