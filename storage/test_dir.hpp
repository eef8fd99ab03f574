// Test support: a fresh directory under the system temp dir, unique per process.
#pragma once

#include <filesystem>
#include <string>
#include <unistd.h>

namespace anvil::testing {

inline std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("anvil-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

}  // namespace anvil::testing
