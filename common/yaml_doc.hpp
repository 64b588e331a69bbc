#pragma once
// Reading YAML documents with errors that point at FILE:LINE:COL.
//
// A yaml_reader collects every error of a document instead of stopping at the
// first one, so that `--validate` can print them all. Readers of a config walk
// the node tree with the typed getters below; each getter reports a precise
// error at the offending node and returns nullopt.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/units.hpp"

namespace vane {

struct config_error {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string message;
  std::string to_string() const;  // "FILE:LINE:COL: message"
};

class yaml_reader {
 public:
  explicit yaml_reader(std::string file_name) : file_(std::move(file_name)) {}

  // Parses text (the content of file_name). On a syntax error, records it and returns an undefined node.
  YAML::Node parse(const std::string& text);
  // Every document of a multi-document text ("---" separated); none on a syntax error (recorded).
  std::vector<YAML::Node> parse_all(const std::string& text);

  void error(const YAML::Mark& at, std::string message);
  void error(const YAML::Node& at, std::string message) { error(at.Mark(), std::move(message)); }

  bool ok() const { return errors_.empty(); }
  const std::vector<config_error>& errors() const { return errors_; }
  const std::string& file() const { return file_; }

  // Reports an error unless n is a map. `what` names the thing for the message.
  bool expect_map(const YAML::Node& n, std::string_view what);
  bool expect_sequence(const YAML::Node& n, std::string_view what);
  // Checks the keys of map n: a key in `supported` is fine; a key in `not_yet`
  // is a known key of a feature not built yet ("not supported yet"); any other
  // key, or a key given twice, is an error.
  void check_keys(const YAML::Node& n, std::string_view what, std::initializer_list<std::string_view> supported,
                  std::initializer_list<std::string_view> not_yet = {});
  // As check_keys, with keys of another tool (Flagger's) that are accepted
  // and have no effect here: returns those present, for the caller to report.
  std::vector<std::string> check_keys_ignoring(const YAML::Node& n, std::string_view what,
                                               std::initializer_list<std::string_view> supported,
                                               std::initializer_list<std::string_view> ignored);
  // Reports "missing required key" at map n when key is absent.
  bool require(const YAML::Node& n, std::string_view key, std::string_view what);

  std::optional<std::string> get_string(const YAML::Node& n, std::string_view what);
  std::optional<bool> get_bool(const YAML::Node& n, std::string_view what);
  std::optional<std::int64_t> get_int(const YAML::Node& n, std::string_view what, std::int64_t min, std::int64_t max);
  std::optional<duration> get_duration(const YAML::Node& n, std::string_view what);
  std::optional<std::uint64_t> get_size(const YAML::Node& n, std::string_view what);

 private:
  void check_keys_impl(const YAML::Node& n, std::string_view what, std::initializer_list<std::string_view> supported,
                       std::initializer_list<std::string_view> not_yet, std::initializer_list<std::string_view> ignored,
                       std::vector<std::string>* ignored_present);
  std::string file_;
  std::vector<config_error> errors_;
};

// Reads a whole file; returns nullopt (and sets `error_message`) if it cannot be read.
std::optional<std::string> read_file(const std::string& path, std::string& error_message);

}  // namespace vane
