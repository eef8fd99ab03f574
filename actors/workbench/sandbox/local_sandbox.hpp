// The "local" sandbox provider of the workbench (SEEDS-INVENTORY F.5): a
// sandbox is a directory <root>/<sandbox_id>, and a command runs in it as a
// child process, under bubblewrap when it is usable (docs/workbench.md,
// "Local sandbox provider").
//
//   auto provider = LocalSandboxProvider::make({.root = dir});
//   auto dir = (*provider)->create("sbx-1");
//   ExecRequest req{.argv = {"git", "clone", url, "repo"}};
//   auto res = co_await ctx.wait((*provider)->exec("sbx-1", std::move(req)));
//
// A command sees an environment of PATH, LANG, HOME (= the sandbox's
// directory), TMPDIR=/tmp and the request's env, nothing else of the node's
// (its secrets never reach a command). Under bubblewrap it sees the host
// read-only, its sandbox's directory writable, a private /tmp, /proc and PID
// namespace, none of the other sandboxes (the root is hidden) nor any path
// of SandboxConfig::hidden, and the host's network (so it reaches services
// on 127.0.0.1); it dies with the node. Without bubblewrap (bwrap=off, or
// auto where it cannot create namespaces) only the environment and the
// working directory are confined.
//
// A command runs on a thread of its own, so exec never blocks the caller's
// thread and a long command starves nothing. A non-zero exit is a result,
// not an error; a timeout kills the command's process group (timed_out);
// output beyond max_output per stream is dropped (truncated). A wait the
// actor abandons (its deadline, a stop) leaves the command running until
// its own timeout; kill_running or destroy end it sooner.
//
// Errors (group "sandbox"): not_configured (make: no root, bwrap=on but
// unusable, bwrap neither auto/on/off), invalid_id (not [A-Za-z0-9._-]{1,128},
// or "." / ".."), not_found (exec/destroy of a sandbox never created or
// destroyed), invalid_command (empty argv, or a cwd leaving the sandbox),
// exec_failed (the command could not start), io_failed (a directory could
// not be created or removed).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/value/error.hpp"
#include "runtime/actor_api.hpp"

namespace anvil::workbench {

struct SandboxConfig {
  std::string root;                                 // where sandbox directories live (created)
  std::string bwrap = "auto";                       // auto | on | off
  std::chrono::milliseconds default_timeout{60'000};  // when ExecRequest::timeout is 0
  size_t max_output = 1 << 20;                      // per stream
  std::vector<std::string> hidden;                  // paths no command may see (e.g. the node's data dir)
};

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::string cwd;  // relative to the sandbox directory ("" = the directory itself)
  std::chrono::milliseconds timeout{0};  // 0 = SandboxConfig::default_timeout
  std::string stdin_data;
};

struct ExecResult {
  int exit_code = 0;  // 128 + signal when a signal ended the command (137: killed)
  std::string stdout_data, stderr_data;
  bool timed_out = false;
  bool truncated = false;
};

class LocalSandboxProvider : public std::enable_shared_from_this<LocalSandboxProvider> {
 public:
  static constexpr const char* kId = "local";

  static Result<std::shared_ptr<LocalSandboxProvider>> make(SandboxConfig cfg);

  // Creates <root>/<sandbox_id> (idempotent) and returns its absolute path.
  Result<std::string> create(const std::string& sandbox_id);
  // Kills the sandbox's running commands and removes its directory.
  Status destroy(const std::string& sandbox_id);
  bool exists(const std::string& sandbox_id) const;
  // The sandbox's absolute directory (whether or not it exists), or invalid_id.
  Result<std::string> dir_of(const std::string& sandbox_id) const;

  // Runs one command in the sandbox; awaitable from an actor via ctx.wait(...).
  Task<Result<ExecResult>> exec(const std::string& sandbox_id, ExecRequest req);

  // Fault injection (D21): SIGKILL to every command running in the sandbox;
  // returns how many were running.
  int kill_running(const std::string& sandbox_id);
  // Commands of the sandbox running now.
  int running(const std::string& sandbox_id) const;

  bool uses_bwrap() const { return bwrap_; }
  const SandboxConfig& config() const { return cfg_; }

 private:
  LocalSandboxProvider(SandboxConfig cfg, bool bwrap) : cfg_(std::move(cfg)), bwrap_(bwrap) {}
  Result<ExecResult> run_now(const std::string& sandbox_id, const std::string& dir, const ExecRequest& req);

  const SandboxConfig cfg_;  // root is absolute
  const bool bwrap_;
  mutable std::mutex mu_;
  std::map<std::string, std::set<pid_t>> running_;  // GUARDED_BY(mu_)  sandbox -> process groups
};

}  // namespace anvil::workbench
