// Per-user agent runtimes (OpenCode) behind one interface, chosen by
// configuration (docs/growqr.md, "Sub-agents and the sandbox provider"):
//
//   SANDBOX_PROVIDER=static (default)  one runtime for everyone at OPENCODE_URL
//                                      (development and tests: `opencode serve`
//                                      or the OpenCode fake)
//   SANDBOX_PROVIDER=process           one OpenCode process per user on a port
//                                      range, under bubblewrap (development,
//                                      tests; process_provider.hpp)
//   SANDBOX_PROVIDER=docker            one container per user through the Docker
//                                      Engine API on a unix socket (production)
//
// provision() is idempotent (a running runtime is returned as it is) and
// mirrors the runtime into `user_stacks` (status, opencode_url, last_error);
// stop() stops it and marks the row `stopped`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/actor_api.hpp"

namespace anvil::growqr {

struct UserRuntime {
  std::string opencode_url;  // base URL of the user's OpenCode server
  std::string provider;      // "static" | "process" | "docker"
  std::string handle;        // container name for docker, pid for process; empty for static
};

class SandboxProvider {
 public:
  virtual ~SandboxProvider() = default;
  virtual std::string name() const = 0;
  virtual Task<Result<UserRuntime>> provision(ActorContext& c, std::string user_id) = 0;
  virtual Task<Status> stop(ActorContext& c, std::string user_id) = 0;
};

// sandbox.not_configured when the configuration names no usable provider.
Result<std::unique_ptr<SandboxProvider>> make_sandbox_provider(const ActorContext& c);

// "A=1,B=2" -> {"A=1", "B=2"}: the NAME=VALUE lists of DOCKER_OPENCODE_ENV
// and SANDBOX_ENV.
std::vector<std::string> env_list(const std::string& csv);

// A user's port in start..end: a stable pick from the user id, moved by
// `probe` (0, 1, ...) past ports that are taken. 0 for an empty range.
int stable_port(const std::string& user_id, int start, int end, int probe);

// Writes the user's `user_stacks` row (and the `users` row it needs).
Task<Status> mirror_user_stack(ActorContext& c, std::string user_id, std::string status, std::string opencode_url,
                               std::string last_error);

}  // namespace anvil::growqr
