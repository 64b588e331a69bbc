#pragma once
// Which events of the config file's directory concern the config (the
// runtime watches the directory, not the file: editors replace files, and
// Kubernetes swaps the `..data` symlink of a mounted ConfigMap).
#include <span>
#include <string_view>

namespace vane::proxy {

// True when the inotify events in `bytes` (as read from the watch) name the
// config file (`file_name`, without its directory) or `..data`. Events on
// other files there (a log file, an editor's swap file) do not: a debug log
// written next to the config used to re-read it every 50 ms, each re-read
// logging again. A truncated last event is ignored.
bool events_name_config(std::span<const char> bytes, std::string_view file_name) noexcept;

}  // namespace vane::proxy
