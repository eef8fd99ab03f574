// `anvil doctor`: configuration, disk space, data directory, port and
// Postgres/Redis checks (docs/operator-guide.md, "The anvil CLI").
#pragma once

#include <string>
#include <vector>

namespace anvil::tools {

// args: everything after `anvil doctor`. Exit code: 0 nothing failed, 1 a
// check failed, 2 usage.
int doctor_command(const std::vector<std::string>& args);

}  // namespace anvil::tools
