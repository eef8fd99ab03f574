// `anvil events ...` (GrowQR replay and dead letters over a node's routes).
#pragma once

#include <string>
#include <vector>

namespace anvil::tools {

// args: everything after `anvil events`. Returns the process exit code.
int events_command(const std::vector<std::string>& args);

}  // namespace anvil::tools
