#include "base/proc/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>
#include <tuple>

namespace anvil::proc {
namespace {

Error spawn_failed(const std::string& what) { return make_error("proc", "spawn_failed", what); }

// A C argv/envp that outlives the vectors it points into (built before fork:
// nothing is allocated between fork and exec).
struct CStrings {
  explicit CStrings(const std::vector<std::string>& v) {
    for (const auto& s : v) ptrs.push_back(const_cast<char*>(s.c_str()));
    ptrs.push_back(nullptr);
  }
  std::vector<char*> ptrs;
};

// In the child, after fork: every descriptor above 2 goes (sockets, RocksDB
// files, other children's pipes).
void close_from_3() {
  if (::close_range(3, ~0U, 0) == 0) return;
  for (int fd = 3; fd < 4096; ++fd) ::close(fd);
}

// In the child, after fork: the signal mask and ignored signals survive
// exec, and the parent's thread may have either.
void reset_signals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, nullptr);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// write() to a pipe whose reader is gone raises SIGPIPE in the writing
// thread: block it around the write and consume it, so the caller's process
// (which may not ignore SIGPIPE) survives a child that stops reading.
ssize_t write_no_sigpipe(int fd, const char* data, size_t n) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t w = ::write(fd, data, n);
  const int saved = errno;
  if (w < 0 && saved == EPIPE) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return w;
}

int exit_code_of(int status, int* signal) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    *signal = WTERMSIG(status);
    return 128 + *signal;
  }
  return -1;
}

}  // namespace

std::string path_env() {
  const char* p = std::getenv("PATH");
  return p && *p ? p : "/usr/local/bin:/usr/bin:/bin";
}

std::string resolve_program(const std::string& program) {
  if (program.empty()) return "";
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0 ? program : "";
  std::istringstream dirs(path_env());
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return "";
}

Result<RunOutput> run(const RunSpec& spec) {
  if (spec.argv.empty()) return spawn_failed("No command to run.");
  const std::string exe = resolve_program(spec.argv.front());
  if (exe.empty()) return spawn_failed("`" + spec.argv.front() + "` is not an executable on PATH.");
  CStrings args(spec.argv), env(spec.env);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();

  int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(o, O_CLOEXEC) != 0 || ::pipe2(e, O_CLOEXEC) != 0) {
    const std::string why = std::strerror(errno);
    for (int* p : {in, o, e}) close_fd(p[0]), close_fd(p[1]);
    return spawn_failed("pipe: " + why);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const std::string why = std::strerror(errno);
    for (int* p : {in, o, e}) close_fd(p[0]), close_fd(p[1]);
    return spawn_failed("fork: " + why);
  }
  if (pid == 0) {
    ::setsid();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent went between fork and prctl
    if (::dup2(in[0], 0) < 0 || ::dup2(o[1], 1) < 0 || ::dup2(e[1], 2) < 0) ::_exit(126);
    close_from_3();
    if (cwd && ::chdir(cwd) != 0) ::_exit(126);
    reset_signals();
    ::execve(exe.c_str(), args.ptrs.data(), env.ptrs.data());
    ::_exit(127);
  }
  close_fd(in[0]), close_fd(o[1]), close_fd(e[1]);
  if (spec.on_pid) spec.on_pid(pid);

  RunOutput out;
  using clock = std::chrono::steady_clock;
  const bool has_deadline = spec.timeout.count() > 0;
  const auto deadline = clock::now() + spec.timeout;
  // After a kill, whatever still holds the pipes (a grandchild that left the
  // group) gets a moment, then the pipes are abandoned.
  auto give_up_at = clock::time_point::max();
  auto kill_for_timeout = [&] {
    out.timed_out = true;
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    give_up_at = clock::now() + std::chrono::seconds(1);
  };
  auto append = [&](std::string& to, const char* data, size_t n) {
    if (spec.max_output == 0 || to.size() + n <= spec.max_output) {
      to.append(data, n);
      return;
    }
    if (to.size() < spec.max_output) to.append(data, spec.max_output - to.size());
    out.truncated = true;
  };

  size_t written = 0;
  if (spec.stdin_data.empty()) close_fd(in[1]);
  char buf[16384];
  while (o[0] >= 0 || e[0] >= 0 || in[1] >= 0) {
    const auto now = clock::now();
    if (has_deadline && !out.timed_out && now >= deadline) kill_for_timeout();
    if (now >= give_up_at) break;
    int wait_ms = -1;
    auto until = has_deadline && !out.timed_out ? deadline : give_up_at;
    if (until != clock::time_point::max())
      wait_ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1);
    pollfd fds[3];
    int n = 0, io = -1, oo = -1, eo = -1;
    if (in[1] >= 0) io = n, fds[n++] = {in[1], POLLOUT, 0};
    if (o[0] >= 0) oo = n, fds[n++] = {o[0], POLLIN, 0};
    if (e[0] >= 0) eo = n, fds[n++] = {e[0], POLLIN, 0};
    const int ready = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (ready == 0) continue;
    if (io >= 0 && fds[io].revents) {
      const ssize_t w = write_no_sigpipe(in[1], spec.stdin_data.data() + written,
                                std::min<size_t>(spec.stdin_data.size() - written, 65536));
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 || written == spec.stdin_data.size()) close_fd(in[1]);
    }
    for (auto [idx, fd, to] : {std::tuple<int, int*, std::string*>{oo, &o[0], &out.out}, {eo, &e[0], &out.err}}) {
      if (idx < 0 || !fds[idx].revents) continue;
      const ssize_t r = ::read(*fd, buf, sizeof buf);
      if (r > 0)
        append(*to, buf, static_cast<size_t>(r));
      else if (r == 0 || errno != EINTR)
        close_fd(*fd);
    }
  }
  close_fd(in[1]), close_fd(o[0]), close_fd(e[0]);

  // The pipes are closed; the child may still run (it closed its output).
  // Wait for its exit without reaping it (WNOWAIT): until it is reaped its
  // pid, and so its process group, cannot be reused, so on_pid(0) and the
  // last kill below never reach another process.
  for (;;) {
    siginfo_t info{};
    const int r = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (has_deadline && !out.timed_out && clock::now() >= deadline) kill_for_timeout();
    if (out.timed_out) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // The group may still have members (a grandchild in the background): a
  // timed-out command leaves nothing behind.
  if (out.timed_out) ::kill(-pid, SIGKILL);
  if (spec.on_pid) spec.on_pid(0);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  out.exit_code = exit_code_of(status, &out.signal);
  return out;
}

namespace {

Result<pid_t> fork_detached(const std::string& exe, const std::vector<std::string>& argv,
                            const std::vector<std::string>& envp, const std::string& dir, const std::string& log) {
  CStrings args(argv), env(envp);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return spawn_failed(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setsid();
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the parent went between fork and prctl
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || out < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) ::_exit(126);
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    close_from_3();
    reset_signals();
    ::execve(exe.c_str(), args.ptrs.data(), env.ptrs.data());
    ::_exit(127);
  }
  return pid;
}

// PR_SET_PDEATHSIG fires when the *thread* that forked goes, not the
// process: a detached child forked on a short-lived thread (a blocking-pool
// or run_on_own_thread worker, a test's node thread) would get SIGTERM as
// soon as that thread ended. So detached children are forked by one thread
// that lives as long as the process.
class Forker {
 public:
  static Forker& instance() {
    static Forker* f = new Forker();  // never destroyed: it must outlive every caller
    return *f;
  }
  Result<pid_t> spawn(std::function<Result<pid_t>()> job) {
    std::packaged_task<Result<pid_t>()> task(std::move(job));
    auto done = task.get_future();
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(task));
    }
    cv_.notify_one();
    return done.get();
  }

 private:
  Forker() { std::thread([this] { loop(); }).detach(); }
  void loop() {
    for (;;) {
      std::packaged_task<Result<pid_t>()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return !jobs_.empty(); });
        task = std::move(jobs_.front());
        jobs_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<Result<pid_t>()>> jobs_;
};

}  // namespace

Result<pid_t> spawn_detached(const std::string& exe, const std::vector<std::string>& argv,
                             const std::vector<std::string>& envp, const std::string& dir, const std::string& log) {
  return Forker::instance().spawn([&] { return fork_detached(exe, argv, envp, dir, log); });
}

bool alive(pid_t pid) {
  if (pid <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == 0) return true;
  if (r < 0 && errno == ECHILD) return ::kill(pid, 0) == 0;  // not ours to reap (already reaped elsewhere)
  return false;
}

void signal_group(pid_t pid, int sig) {
  if (pid <= 0) return;
  ::kill(-pid, sig);
  ::kill(pid, sig);
}

void kill_group_now(pid_t pid) {
  if (pid <= 0) return;
  signal_group(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace anvil::proc
