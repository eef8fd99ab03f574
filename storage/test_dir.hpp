// Test support: a fresh directory under the system temp dir, unique per process.
#pragma once

#include <filesystem>
#include <string>
#include <sys/mount.h>
#include <unistd.h>

namespace anvil::testing {

inline std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("anvil-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

// A 4 MiB tmpfs mounted on `dir` for real-ENOSPC tests, when this process
// may mount one (root); tests skip when mounted() is false.
class SmallDisk {
 public:
  explicit SmallDisk(const std::string& dir) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=4m") == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool mounted() const { return mounted_; }
  // Grows the file system to 64 MiB: the disk has room again.
  bool grow() { return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, "size=64m") == 0; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

}  // namespace anvil::testing
