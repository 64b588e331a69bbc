#include "proxy/config_watch.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace vane::proxy {

std::vector<std::string> config_names(const std::string& config_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(config_path, ec);
  if (ec) return {fs::path(config_path).filename().string()};
  const fs::path dir = p.parent_path();
  std::vector<std::string> names{p.filename().string()};
  for (int hop = 0; hop < 16 && fs::is_symlink(p, ec); ++hop) {  // (a loop of links ends here too)
    fs::path target = fs::read_symlink(p, ec);
    if (ec) break;
    p = (target.is_relative() ? p.parent_path() / target : target).lexically_normal();
    if (p.parent_path() == dir) names.push_back(p.filename().string());
  }
  return names;
}

namespace {
bool regular_file(const std::string& dir, std::string_view name) noexcept {
  std::string path;
  try {
    path = dir + "/" + std::string(name);
  } catch (...) {
    return false;
  }
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
}  // namespace

bool events_name_config(std::span<const char> bytes, std::span<const std::string> names,
                        const std::string& dir) noexcept {
  std::size_t at = 0;
  while (bytes.size() - at >= sizeof(inotify_event)) {
    inotify_event e{};
    std::memcpy(&e, bytes.data() + at, sizeof e);  // (the buffer need not be aligned for it)
    const std::size_t end = at + sizeof e + e.len;
    if (end > bytes.size()) break;
    if ((e.mask & IN_Q_OVERFLOW) != 0) return true;  // lost events: any of them may have been the config's
    // The name is padded with NULs to `len`.
    std::string_view name(bytes.data() + at + sizeof e, e.len);
    name = name.substr(0, name.find('\0'));
    // A write in progress is not a change yet: its IN_CLOSE_WRITE comes when
    // the writer is done. A writer pausing mid-file (`cat > f` over `kubectl
    // exec`, scp, `kubectl cp`) left a prefix that is often valid YAML. So a
    // bare IN_MODIFY does not count, nor the creation of a regular file (it
    // is written next); a symlink made (`ln -sf`) has nothing more to come.
    const bool named = name == "..data" || std::find(names.begin(), names.end(), name) != names.end();
    const std::uint32_t done = e.mask & ~static_cast<std::uint32_t>(IN_MODIFY | IN_CREATE);
    if (named && (done != 0 || ((e.mask & IN_CREATE) != 0 && !regular_file(dir, name)))) return true;
    at = end;
  }
  return false;
}

}  // namespace vane::proxy
