#include "proxy/config_watch.hpp"

#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using vane::proxy::config_names;
using vane::proxy::events_name_config;

namespace {

// One inotify event as the kernel writes it: the header, then the name padded with NULs.
std::string event(std::string_view name, std::uint32_t mask = IN_CLOSE_WRITE) {
  inotify_event e{};
  e.wd = 1;
  e.mask = mask;
  e.len = name.empty() ? 0 : static_cast<std::uint32_t>((name.size() / 16 + 1) * 16);
  std::string out(sizeof e + e.len, '\0');
  std::memcpy(out.data(), &e, sizeof e);
  std::memcpy(out.data() + sizeof e, name.data(), name.size());
  return out;
}

bool names_config(std::string_view bytes, const std::vector<std::string>& names = {"vane.yaml"},
                  const std::string& dir = "/nonexistent-vane-dir") {
  return events_name_config(bytes, names, dir);
}

}  // namespace

TEST(ConfigWatch, OnlyTheConfigsNameOrKubernetesDataSymlinkCount) {
  EXPECT_TRUE(names_config(event("vane.yaml")));
  EXPECT_TRUE(names_config(event("..data", IN_MOVED_TO)));
  EXPECT_FALSE(names_config(event("vane.log")));
  EXPECT_FALSE(names_config(event(".vane.yaml.swp")));
  EXPECT_FALSE(names_config(event("vane.yaml.bak")));
  EXPECT_FALSE(names_config(event("..data_tmp", IN_CREATE)));
  EXPECT_FALSE(names_config({}));
  // Several events in one read: any one that names the config.
  const std::string batch = event("vane.log") + event("other") + event("vane.yaml", IN_CLOSE_WRITE);
  EXPECT_TRUE(names_config(batch));
  // A truncated last event is not read past the bytes.
  const std::string cut = event("vane.log") + event("vane.yaml").substr(0, sizeof(inotify_event) + 4);
  EXPECT_FALSE(names_config(cut));
}

// A writer that pauses mid-file leaves a prefix that may parse: only the end
// of the write (or a rename, a creation, a removal) counts.
TEST(ConfigWatch, AWriteStillUnderWayDoesNotCount) {
  EXPECT_FALSE(names_config(event("vane.yaml", IN_MODIFY)));
  EXPECT_FALSE(names_config(event("vane.yaml", IN_MODIFY) + event("vane.yaml", IN_MODIFY)));
  EXPECT_TRUE(names_config(event("vane.yaml", IN_MODIFY) + event("vane.yaml", IN_CLOSE_WRITE)));
  EXPECT_TRUE(names_config(event("vane.yaml", IN_DELETE)));
  EXPECT_TRUE(names_config(event("vane.yaml", IN_MOVED_TO)));
}

// `cp`, `scp` or `kubectl cp` onto a new name: IN_CREATE comes while the file
// is still empty, its IN_CLOSE_WRITE when it is whole. A symlink made there
// (`ln -sf`) is whole at once.
TEST(ConfigWatch, TheCreationOfARegularFileWaitsForItsWrite) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("vane-create-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "vane.yaml") << "";
  std::ofstream(dir / "other.yaml") << "x";
  fs::create_symlink("other.yaml", dir / "linked.yaml");
  const std::string d = dir.string();
  EXPECT_FALSE(names_config(event("vane.yaml", IN_CREATE), {"vane.yaml"}, d));
  EXPECT_TRUE(names_config(event("vane.yaml", IN_CREATE) + event("vane.yaml", IN_CLOSE_WRITE), {"vane.yaml"}, d));
  EXPECT_TRUE(names_config(event("linked.yaml", IN_CREATE), {"linked.yaml"}, d));
  EXPECT_TRUE(names_config(event("gone.yaml", IN_CREATE), {"gone.yaml"}, d));  // already gone: read, and refused
  fs::remove_all(dir);
}

TEST(ConfigWatch, AQueueOverflowCounts) { EXPECT_TRUE(names_config(event("", IN_Q_OVERFLOW))); }

// vane.yaml -> vane.prod.yaml in the same directory: an edit of the target
// names the target. A link into another directory (Kubernetes' ..data) adds
// nothing here.
TEST(ConfigWatch, TheNamesOfLinksInTheSameDirectoryCount) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("vane-watch-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "..data");
  std::ofstream(dir / "vane.prod.yaml") << "x";
  std::ofstream(dir / "..data" / "k.yaml") << "x";
  fs::create_symlink("vane.prod.yaml", dir / "vane.yaml");
  fs::create_symlink("..data/k.yaml", dir / "k.yaml");
  EXPECT_EQ(config_names((dir / "vane.yaml").string()), (std::vector<std::string>{"vane.yaml", "vane.prod.yaml"}));
  EXPECT_EQ(config_names((dir / "k.yaml").string()), (std::vector<std::string>{"k.yaml"}));
  EXPECT_EQ(config_names((dir / "vane.prod.yaml").string()), (std::vector<std::string>{"vane.prod.yaml"}));
  const std::vector<std::string> names = config_names((dir / "vane.yaml").string());
  EXPECT_TRUE(names_config(event("vane.prod.yaml"), names));
  fs::remove_all(dir);
}
