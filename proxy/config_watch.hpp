#pragma once
// Which events of the config file's directory concern the config (the
// runtime watches the directory, not the file: editors replace files, and
// Kubernetes swaps the `..data` symlink of a mounted ConfigMap).
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vane::proxy {

// The names in the config's directory whose change changes the config: the
// file's own, and those of the links it goes through (or their final
// target) that are in the same directory (`vane.yaml -> vane.prod.yaml`).
std::vector<std::string> config_names(const std::string& config_path);

// True when the inotify events in `bytes` (as read from the watch of `dir`)
// name one of `names` or `..data` (not a write still under way: a bare
// IN_MODIFY, or IN_CREATE of what is a regular file in `dir`), or say that
// events were lost (a queue overflow).
// Events on other files there (a log file, an editor's swap file) do not: a
// debug log written next to the config used to re-read it every 50 ms, each
// re-read logging again. A truncated last event is ignored.
bool events_name_config(std::span<const char> bytes, std::span<const std::string> names,
                        const std::string& dir) noexcept;

}  // namespace vane::proxy
