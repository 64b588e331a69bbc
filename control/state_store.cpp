#include "control/state_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

namespace vane::control {

namespace json = boost::json;

json::object state_to_json(const run_state& st) {
  return json::object{{"phase", phase_name(st.phase)},
                      {"revision", st.revision},
                      {"pending_revision", st.pending_revision},
                      {"spec_revision", st.spec_revision},
                      {"weight", st.weight},
                      {"failed_checks", st.failed_checks},
                      {"iterations", st.iterations},
                      {"steps", st.steps},
                      {"affinity_value", st.affinity_value},
                      {"pre_rollout_done", st.pre_rollout_done},
                      {"promote_confirmed", st.promote_confirmed},
                      {"primary_promoted", st.primary_promoted},
                      {"promoting_since", st.promoting_since},
                      {"last_transition", st.last_transition},
                      {"gate_alerted", st.gate_alerted},
                      {"initialized", st.initialized}};
}

parsed<run_state> state_from_json(const json::value& v) {
  const auto* o = v.if_object();
  if (!o) return parsed<run_state>::fail(fmt::format("{}, not an object", kind_of(v)));
  run_state st;
  std::string why;
  auto bad = [&](std::string_view key, std::string_view want) {
    if (why.empty()) why = fmt::format("'{}' is {}, not {}", key, kind_of(o->at(key)), want);
  };
  auto str = [&](const char* key, std::string& out) {
    if (!o->contains(key)) return;
    if (auto s = member_string(*o, key))
      out = std::string(*s);
    else
      bad(key, "a string");
  };
  auto u32 = [&](const char* key, std::uint32_t& out) {
    if (!o->contains(key)) return;
    auto n = as_count(o->at(key));
    if (n && *n <= std::numeric_limits<std::uint32_t>::max())
      out = static_cast<std::uint32_t>(*n);
    else
      bad(key, "a count");
  };
  auto flag = [&](const char* key, bool& out) {
    if (!o->contains(key)) return;
    if (auto b = member_bool(*o, key))
      out = *b;
    else
      bad(key, "true or false");
  };
  std::string phase;
  str("phase", phase);
  if (auto p = phase_from_name(phase))
    st.phase = *p;
  else if (why.empty())
    why = fmt::format("unknown phase '{}'", excerpt(phase));
  str("revision", st.revision);
  str("pending_revision", st.pending_revision);
  str("spec_revision", st.spec_revision);
  u32("weight", st.weight);
  if (st.weight > 100 && why.empty()) why = fmt::format("weight {} is over 100", st.weight);
  u32("failed_checks", st.failed_checks);
  u32("iterations", st.iterations);
  u32("steps", st.steps);
  str("affinity_value", st.affinity_value);
  flag("pre_rollout_done", st.pre_rollout_done);
  flag("promote_confirmed", st.promote_confirmed);
  flag("primary_promoted", st.primary_promoted);
  if (o->contains("promoting_since")) {
    if (auto n = as_integer(o->at("promoting_since")))
      st.promoting_since = *n;
    else
      bad("promoting_since", "an integer");
  }
  str("last_transition", st.last_transition);
  str("gate_alerted", st.gate_alerted);
  st.initialized = true;  // older files have no "initialized": every canary in them was seen
  flag("initialized", st.initialized);
  if (!why.empty()) return parsed<run_state>::fail(std::move(why));
  return parsed<run_state>{std::move(st), {}};
}

state_file read_state_text(std::string_view text) {
  state_file out;
  auto v = parse_json_object(text);
  const json::object* all = v ? member_object(*v.value, "canaries") : nullptr;
  if (!all) {
    out.problems.push_back(v ? "no \"canaries\" object" : v.why);
    return out;
  }
  for (const auto& [id, entry] : *all) {
    auto st = state_from_json(entry);
    if (st)
      out.canaries[std::string(id)] = std::move(*st.value);
    else
      out.problems.push_back(fmt::format("canary {}: {}", std::string_view(id), st.why));
  }
  return out;
}

std::string render_state_text(const std::map<std::string, run_state>& all) {
  json::object canaries;
  for (const auto& [id, st] : all) canaries[id] = state_to_json(st);
  return json::serialize(json::object{{"canaries", std::move(canaries)}}) + "\n";
}

std::string write_state_file(const std::string& path, const std::string& text) {
  // Written, flushed to the disk, then renamed over the old file, and the directory flushed: a crash
  // of the process or of the machine leaves the old file or the new one, never an empty one.
  std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
  std::string_view rest = text;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
      ::close(fd);
      return why;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  const bool synced = ::fsync(fd) == 0;
  const int sync_errno = errno;
  const bool closed = ::close(fd) == 0;  // (always: a failed fsync must not leak the descriptor)
  if (!synced || !closed) return fmt::format("cannot write {}: {}", tmp, std::strerror(synced ? errno : sync_errno));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return "cannot replace " + path + ": " + ec.message();
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  if (const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    ::fsync(d);  // (the rename itself; a directory that cannot be opened still has the new file)
    ::close(d);
  }
  return {};
}

}  // namespace vane::control
