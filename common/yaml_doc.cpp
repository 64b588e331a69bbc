#include "common/yaml_doc.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace vane {

std::string config_error::to_string() const { return fmt::format("{}:{}:{}: {}", file, line, column, message); }

YAML::Node yaml_reader::parse(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    error(e.mark, e.msg);
    return YAML::Node(YAML::NodeType::Undefined);
  }
}

void yaml_reader::error(const YAML::Mark& at, std::string message) {
  // yaml-cpp marks are 0-based; a null mark (-1) points at the document start.
  int line = at.line >= 0 ? at.line + 1 : 1;
  int column = at.column >= 0 ? at.column + 1 : 1;
  errors_.push_back(config_error{file_, line, column, std::move(message)});
}

bool yaml_reader::expect_map(const YAML::Node& n, std::string_view what) {
  if (n.IsMap()) return true;
  error(n, fmt::format("{} must be a mapping", what));
  return false;
}

bool yaml_reader::expect_sequence(const YAML::Node& n, std::string_view what) {
  if (n.IsSequence()) return true;
  error(n, fmt::format("{} must be a list", what));
  return false;
}

void yaml_reader::check_keys(const YAML::Node& n, std::string_view what,
                             std::initializer_list<std::string_view> supported,
                             std::initializer_list<std::string_view> not_yet) {
  check_keys_impl(n, what, supported, not_yet, {}, nullptr);
}

std::vector<YAML::Node> yaml_reader::parse_all(const std::string& text) {
  try {
    return YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    error(e.mark, e.msg);
    return {};
  }
}

std::vector<std::string> yaml_reader::check_keys_ignoring(const YAML::Node& n, std::string_view what,
                                                          std::initializer_list<std::string_view> supported,
                                                          std::initializer_list<std::string_view> ignored) {
  std::vector<std::string> present;
  check_keys_impl(n, what, supported, {}, ignored, &present);
  return present;
}

void yaml_reader::check_keys_impl(const YAML::Node& n, std::string_view what,
                                  std::initializer_list<std::string_view> supported,
                                  std::initializer_list<std::string_view> not_yet,
                                  std::initializer_list<std::string_view> ignored,
                                  std::vector<std::string>* ignored_present) {
  if (!n.IsMap()) return;
  std::set<std::string, std::less<>> seen;
  auto has = [](std::initializer_list<std::string_view> list, std::string_view name) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  for (const auto& kv : n) {
    const YAML::Node& key = kv.first;
    if (!key.IsScalar()) {
      error(key, fmt::format("{}: keys must be plain names", what));
      continue;
    }
    const std::string& name = key.Scalar();
    if (!seen.insert(name).second) {
      error(key, fmt::format("{}: key '{}' is given twice", what, name));
      continue;
    }
    if (has(supported, name)) continue;
    if (has(not_yet, name)) {
      error(key, fmt::format("{}.{}: not supported yet", what, name));
      continue;
    }
    if (has(ignored, name)) {
      if (ignored_present) ignored_present->push_back(name);
      continue;
    }
    std::string known;
    for (auto k : supported) known += (known.empty() ? "" : ", ") + std::string(k);
    for (auto k : not_yet) known += (known.empty() ? "" : ", ") + std::string(k);
    if (ignored.size() > 0)
      error(key, fmt::format("{}: unknown key '{}' (known: {}; and Flagger's {})", what, name, known,
                             fmt::join(ignored, ", ")));
    else
      error(key, fmt::format("{}: unknown key '{}' (known: {})", what, name, known));
  }
}

bool yaml_reader::require(const YAML::Node& n, std::string_view key, std::string_view what) {
  if (n.IsMap() && n[std::string(key)]) return true;
  error(n, fmt::format("{}: missing required key '{}'", what, key));
  return false;
}

std::optional<std::string> yaml_reader::get_string(const YAML::Node& n, std::string_view what) {
  if (!n.IsScalar()) {
    error(n, fmt::format("{} must be a string", what));
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<bool> yaml_reader::get_bool(const YAML::Node& n, std::string_view what) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  error(n, fmt::format("{} must be true or false", what));
  return std::nullopt;
}

std::optional<std::int64_t> yaml_reader::get_int(const YAML::Node& n, std::string_view what, std::int64_t min,
                                                 std::int64_t max) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    std::int64_t v = 0;
    std::istringstream in(s);
    if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-') && (in >> v) && in.eof()) {
      if (v < min || v > max) {
        error(n, fmt::format("{} must be between {} and {}, got {}", what, min, max, v));
        return std::nullopt;
      }
      return v;
    }
  }
  error(n, fmt::format("{} must be an integer", what));
  return std::nullopt;
}

std::optional<duration> yaml_reader::get_duration(const YAML::Node& n, std::string_view what) {
  if (n.IsScalar()) {
    if (auto d = parse_duration(n.Scalar())) return d;
    error(n, fmt::format("{}: '{}' is not a duration (write 250ms, 15s, 1m or 24h)", what, n.Scalar()));
    return std::nullopt;
  }
  error(n, fmt::format("{} must be a duration (250ms, 15s, 1m, 24h)", what));
  return std::nullopt;
}

std::optional<std::uint64_t> yaml_reader::get_size(const YAML::Node& n, std::string_view what) {
  if (n.IsScalar()) {
    if (auto s = parse_size(n.Scalar())) return s;
    error(n, fmt::format("{}: '{}' is not a size (write 512, 64KiB, 16MiB or 1GiB)", what, n.Scalar()));
    return std::nullopt;
  }
  error(n, fmt::format("{} must be a size (512, 64KiB, 16MiB, 1GiB)", what));
  return std::nullopt;
}

std::optional<std::string> read_file(const std::string& path, std::string& error_message) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error_message = fmt::format("{}: cannot open: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace vane
