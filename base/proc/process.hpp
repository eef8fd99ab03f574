// Child processes: run one to completion with its output captured (stdin
// fed, a deadline, an output cap, its whole process group killed on
// timeout), or start one detached with its output appended to a log. Used
// by base/git (git), GrowQR's process sandbox (one OpenCode per user) and
// the workbench's local sandbox (commands in a directory).
//
// Children are started with fork + exec, with only async-signal-safe calls
// between them, in a session of their own (so one signal to the process
// group reaches everything they start), with every descriptor but 0/1/2
// closed, and with SIGKILL sent to them when the thread that forked them
// goes away (run; PR_SET_PDEATHSIG), or SIGTERM when the process goes
// (spawn_detached).
//
// Every call is synchronous: callers on an event loop run it elsewhere
// (base/proc/blocking.hpp, or a thread of their own for long commands).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "base/value/error.hpp"

namespace anvil::proc {

// $PATH, or /usr/local/bin:/usr/bin:/bin when unset.
std::string path_env();
// The absolute path of `program` as execvp would find it on path_env() (a
// program containing '/' is checked as is), or "" when it is not an executable.
std::string resolve_program(const std::string& program);

struct RunSpec {
  std::vector<std::string> argv;  // argv[0] is looked up with resolve_program
  std::vector<std::string> env;   // NAME=VALUE: the child's whole environment
  std::string cwd;                // "" = the caller's
  std::string stdin_data;         // written, then stdin is closed
  std::chrono::milliseconds timeout{0};  // 0 = none; then the process group gets SIGKILL
  size_t max_output = 0;          // per stream, 0 = unlimited; the rest is read and dropped
  // Called with the child's pid (= its process group) once it runs, and
  // again with 0 right before it is reaped: between the two, signalling the
  // group is safe (the pid cannot have been reused).
  std::function<void(pid_t)> on_pid;
};

struct RunOutput {
  int exit_code = -1;  // the exit status; 128 + signal when a signal ended it
  int signal = 0;      // the signal that ended it, 0 when it exited
  std::string out, err;
  bool timed_out = false;
  bool truncated = false;  // some output beyond max_output was dropped
};

// Runs spec.argv to completion. proc.spawn_failed when it cannot start
// (program not found, fork failed); a non-zero exit is not an error.
Result<RunOutput> run(const RunSpec& spec);

// Starts `exe` (absolute) detached: its own session, stdin /dev/null,
// stdout and stderr appended to `log`, working directory `dir`, SIGTERM when
// this process goes (it is forked by a thread that lives as long as the
// process, whichever thread calls). proc.spawn_failed when fork fails.
Result<pid_t> spawn_detached(const std::string& exe, const std::vector<std::string>& argv,
                             const std::vector<std::string>& envp, const std::string& dir, const std::string& log);

// Whether `pid` (a child of ours) still runs; reaps it when it ended.
bool alive(pid_t pid);
// SIGKILL to the process group of `pid` (and to pid), then reaps it.
void kill_group_now(pid_t pid);
// `sig` to the process group of `pid`, a child of run() or spawn_detached()
// not reaped yet, and to `pid` itself: right after fork() the child may not
// have made its group yet (it calls setsid() first thing), and then the
// group signal finds nothing.
void signal_group(pid_t pid, int sig);

}  // namespace anvil::proc
