#include "proxy/config_watch.hpp"

#include <gtest/gtest.h>
#include <sys/inotify.h>

#include <cstring>
#include <string>

using vane::proxy::events_name_config;

namespace {

// One inotify event as the kernel writes it: the header, then the name padded with NULs.
std::string event(std::string_view name, std::uint32_t mask = IN_MODIFY) {
  inotify_event e{};
  e.wd = 1;
  e.mask = mask;
  e.len = name.empty() ? 0 : static_cast<std::uint32_t>((name.size() / 16 + 1) * 16);
  std::string out(sizeof e + e.len, '\0');
  std::memcpy(out.data(), &e, sizeof e);
  std::memcpy(out.data() + sizeof e, name.data(), name.size());
  return out;
}

}  // namespace

TEST(ConfigWatch, OnlyTheConfigsNameOrKubernetesDataSymlinkCount) {
  EXPECT_TRUE(events_name_config(std::string_view(event("vane.yaml")), "vane.yaml"));
  EXPECT_TRUE(events_name_config(std::string_view(event("..data", IN_MOVED_TO)), "vane.yaml"));
  EXPECT_FALSE(events_name_config(std::string_view(event("vane.log")), "vane.yaml"));
  EXPECT_FALSE(events_name_config(std::string_view(event(".vane.yaml.swp")), "vane.yaml"));
  EXPECT_FALSE(events_name_config(std::string_view(event("vane.yaml.bak")), "vane.yaml"));
  EXPECT_FALSE(events_name_config(std::string_view(event("..data_tmp", IN_CREATE)), "vane.yaml"));
  EXPECT_FALSE(events_name_config({}, "vane.yaml"));
  // Several events in one read: any one that names the config.
  const std::string batch = event("vane.log") + event("other") + event("vane.yaml", IN_CLOSE_WRITE);
  EXPECT_TRUE(events_name_config(std::string_view(batch), "vane.yaml"));
  // A truncated last event is not read past the bytes.
  const std::string cut = event("vane.log") + event("vane.yaml").substr(0, sizeof(inotify_event) + 4);
  EXPECT_FALSE(events_name_config(std::string_view(cut), "vane.yaml"));
}
