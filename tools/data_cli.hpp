// `anvil data export|import|compact`: moving actors between nodes and
// reclaiming space, on a data directory (docs/operator-guide.md,
// "Move actors to a new node", "The disk is full").
#pragma once

#include <string>
#include <vector>

namespace anvil::tools {

// args: everything after `anvil data`. Returns the process exit code.
int data_command(const std::vector<std::string>& args);

}  // namespace anvil::tools
