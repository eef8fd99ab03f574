#include "base/proc/bwrap.hpp"

#include <sys/wait.h>

#include <cerrno>
#include <filesystem>

#include "base/proc/process.hpp"

namespace anvil::proc {

bool bwrap_works() {
  static const bool works = [] {
    if (resolve_program("bwrap").empty()) return false;
    RunSpec spec;
    spec.argv = {"bwrap", "--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/",
                 "--dev", "/dev", "--proc", "/proc", "--", "/bin/true"};
    spec.env = {"PATH=" + path_env()};
    spec.timeout = std::chrono::seconds(10);
    auto r = run(spec);
    return r.ok() && r->exit_code == 0;
  }();
  return works;
}

std::vector<std::string> bwrap_argv(const BwrapSpec& spec, const std::vector<std::string>& command) {
  std::vector<std::string> argv = {resolve_program("bwrap"), "--die-with-parent", "--unshare-pid", "--unshare-ipc",
                                   "--unshare-uts", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                   "--tmpfs", "/tmp"};
  for (const auto& hidden : spec.hidden)
    if (!hidden.empty() && std::filesystem::exists(hidden)) argv.insert(argv.end(), {"--tmpfs", hidden});
  argv.insert(argv.end(), {"--bind", spec.writable_dir, spec.writable_dir, "--chdir",
                           spec.chdir.empty() ? spec.writable_dir : spec.chdir, "--"});
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

}  // namespace anvil::proc
