#include "proxy/config_watch.hpp"

#include <sys/inotify.h>

#include <cstring>

namespace vane::proxy {

bool events_name_config(std::span<const char> bytes, std::string_view file_name) noexcept {
  std::size_t at = 0;
  while (bytes.size() - at >= sizeof(inotify_event)) {
    inotify_event e{};
    std::memcpy(&e, bytes.data() + at, sizeof e);  // (the buffer need not be aligned for it)
    const std::size_t end = at + sizeof e + e.len;
    if (end > bytes.size()) break;
    // The name is padded with NULs to `len`.
    std::string_view name(bytes.data() + at + sizeof e, e.len);
    name = name.substr(0, name.find('\0'));
    if (name == file_name || name == "..data") return true;
    at = end;
  }
  return false;
}

}  // namespace vane::proxy
