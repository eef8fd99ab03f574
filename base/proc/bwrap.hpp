// Bubblewrap (bwrap) as the isolation of a local sandbox: whether it works
// here, and the command line that runs a command with the host read-only,
// one directory writable, a private /tmp, /proc and PID namespace, the
// network shared (so the command reaches services on 127.0.0.1), and some
// paths hidden behind empty tmpfs mounts. Shared by GrowQR's process sandbox
// provider and the workbench's local sandbox provider.
#pragma once

#include <string>
#include <vector>

namespace anvil::proc {

// Runs `bwrap ... /bin/true` once per process: bubblewrap may be installed
// but unusable (no user namespaces in a container).
bool bwrap_works();

struct BwrapSpec {
  std::string writable_dir;         // absolute; bound read-write and the working directory
  std::vector<std::string> hidden;  // absolute; each replaced by an empty tmpfs (missing ones skipped)
  std::string chdir;                // absolute; "" = writable_dir
};

// ["<path of bwrap>", options..., "--", command...]. Hidden paths are
// mounted before writable_dir, so a hidden parent (the root of every
// sandbox) still shows this one directory. The command dies with bwrap
// (--die-with-parent), and bwrap with its parent.
std::vector<std::string> bwrap_argv(const BwrapSpec& spec, const std::vector<std::string>& command);

}  // namespace anvil::proc
