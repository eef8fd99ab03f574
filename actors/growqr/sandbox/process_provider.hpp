// The local-process sandbox provider (development and tests): one OpenCode
// server process per user, started on demand on a port of
// USER_PORT_RANGE_START..USER_PORT_RANGE_END, in its own directory, under
// bubblewrap when it is there (docs/growqr.md, "Sandbox provider").
//
//   SANDBOX_PROVIDER=process
//   OPENCODE_COMMAND    the server's command line, split on spaces, no shell;
//                       {port}, {dir} and {user} are replaced
//                       (default `opencode serve --hostname 127.0.0.1 --port {port}`)
//   SANDBOX_DIR         where each user's directory lives (default
//                       <ANVIL_DATA_DIR>/sandboxes); the directory is the
//                       process's working directory and HOME, so OpenCode's
//                       own data survives a restart of the process
//   SANDBOX_BWRAP       auto (default: used when bwrap runs here) | on | off
//   SANDBOX_ENV         NAME=VALUE,... passed to the process; nothing else of
//                       the node's environment is (only PATH and LANG), so the
//                       node's secrets never reach a user's runtime
//   OPENCODE_START_TIMEOUT_MS  how long GET /global/health may take to answer (30000)
//
// Under bubblewrap the process sees the host read-only, its own directory
// writable, a private /tmp, /proc and PID namespace, and neither the sandbox
// root (other users) nor the node's data directory; it shares the network so
// the node reaches it on 127.0.0.1. It dies with the node (--die-with-parent;
// without bubblewrap, PR_SET_PDEATHSIG) and is started again on the next
// provision. Its output goes to <SANDBOX_DIR>/<owner>.log.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "actors/growqr/sandbox/sandbox_provider.hpp"

namespace anvil::growqr {

struct ProcessConfig {
  std::vector<std::string> command;  // tokens, placeholders not yet replaced
  std::string root;                  // SANDBOX_DIR
  std::string data_dir;              // ANVIL_DATA_DIR, hidden from the process
  int port_start = 0, port_end = 0;
  bool bwrap = false;  // resolved: auto -> whether bwrap works here
  std::vector<std::string> env;  // NAME=VALUE
  std::chrono::milliseconds start_timeout{30'000};
};

// sandbox.not_configured naming what is missing (no port range, no
// directory, a command that is not on PATH, SANDBOX_BWRAP=on without a
// working bwrap).
Result<ProcessConfig> process_config_from(const ActorContext& c);
std::unique_ptr<SandboxProvider> make_process_provider(ProcessConfig cfg);

// The processes this node started, one per user; thread-safe, one per process.
class ProcessSupervisor {
 public:
  struct Child {
    pid_t pid = 0;
    int port = 0;
    std::string url;  // http://127.0.0.1:<port>
    std::string log;  // its output file
    bool started_now = false;  // set on ensure()'s answer when it started this one
  };

  static ProcessSupervisor& instance();
  ~ProcessSupervisor();  // terminates every child

  // The user's running child, or a new one (spawned, not yet known healthy).
  Result<Child> ensure(const ProcessConfig& cfg, const std::string& user_id);
  // The user's child if it is still running (a dead one is reaped and forgotten).
  std::optional<Child> running(const std::string& user_id);
  // Forgets the user's child and sends SIGTERM to its process group; returns
  // its pid (0 when none ran).
  pid_t terminate(const std::string& user_id);
  // Whether `pid` (a child of ours) still runs; reaps it when it ended.
  static bool alive(pid_t pid);
  // SIGKILL to the process group of `pid`, then reaps it.
  static void kill_now(pid_t pid);
  // Forgets a child that never became healthy and kills it.
  void discard(const std::string& user_id, pid_t pid);

 private:
  ProcessSupervisor() = default;
  std::mutex mu_;
  std::map<std::string, Child> children_;
};

// The last `max` bytes of a file (a child's log, for error messages).
std::string file_tail(const std::string& path, size_t max = 2000);

}  // namespace anvil::growqr
