#pragma once
// The --state file: every canary's run_state by NAME.NAMESPACE, written
// atomically (temp file + rename) and read back without throwing — a canary
// whose entry cannot be read starts afresh, with why in the log.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <string>
#include <vector>

#include "control/parse.hpp"
#include "control/run.hpp"

namespace vane::control {

boost::json::object state_to_json(const run_state& st);
// One canary's entry; a field of the wrong type is a reason, an unknown phase too.
parsed<run_state> state_from_json(const boost::json::value& v);

struct state_file {
  std::map<std::string, run_state> canaries;
  std::vector<std::string> problems;  // "canary X: why", or the whole file's why
};

// The file's text (`{"canaries": {ID: {...}}}`) as states; what could not be read is in `problems`.
state_file read_state_text(std::string_view text);
std::string render_state_text(const std::map<std::string, run_state>& all);
// Writes `text` to `path` atomically; "" or why it failed.
std::string write_state_file(const std::string& path, const std::string& text);

}  // namespace vane::control
