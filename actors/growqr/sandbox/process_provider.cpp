#include "actors/growqr/sandbox/process_provider.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "actors/growqr/memory/memory_store.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "base/proc/bwrap.hpp"
#include "base/proc/process.hpp"

namespace anvil::growqr {
namespace fs = std::filesystem;

namespace {

const char* const kDefaultCommand = "opencode serve --hostname 127.0.0.1 --port {port}";

std::vector<std::string> split_spaces(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string tok;
  while (in >> tok) out.push_back(tok);
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

bool port_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

class ProcessProvider final : public SandboxProvider {
 public:
  explicit ProcessProvider(ProcessConfig cfg) : cfg_(std::move(cfg)) {}
  std::string name() const override { return "process"; }

  Task<Result<UserRuntime>> provision(ActorContext& c, std::string user_id) override {
    auto& sup = ProcessSupervisor::instance();
    auto child = sup.ensure(cfg_, user_id);
    Result<UserRuntime> out = child.ok() ? Result<UserRuntime>(UserRuntime{}) : Result<UserRuntime>(child.error());
    if (child.ok()) {
      auto healthy = co_await wait_healthy(c, *child);
      if (!healthy.ok() && !child->started_now && !ProcessSupervisor::alive(child->pid)) {
        // The runtime this call found running died meanwhile (killed just
        // before, not yet seen as exited): start a new one, once.
        sup.discard(user_id, child->pid);
        child = sup.ensure(cfg_, user_id);
        if (child.ok())
          healthy = co_await wait_healthy(c, *child);
        else
          healthy = child.error();
      }
      if (!child.ok()) {
        out = child.error();
      } else if (healthy.ok()) {
        out = UserRuntime{child->url, "process", std::to_string(child->pid)};
      } else {
        sup.discard(user_id, child->pid);
        out = healthy.error();
      }
    }
    const std::string status = out.ok() ? "running" : "failed";
    std::string url = out.ok() ? out->opencode_url : "", why = out.ok() ? "" : out.error().message;
    auto st = co_await mirror_user_stack(c, user_id, status, url, why);
    if (!st.ok()) spdlog::warn("user_stacks not mirrored userId={}: {}", user_id, st.error().message);
    co_return out;
  }

  Task<Status> stop(ActorContext& c, std::string user_id) override {
    const pid_t pid = ProcessSupervisor::instance().terminate(user_id);
    if (pid > 0) {
      // SIGTERM first; a process that does not go within 5 s is killed.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (ProcessSupervisor::alive(pid) && std::chrono::steady_clock::now() < deadline) {
        auto slept = co_await c.sleep_for(std::chrono::milliseconds(50));
        if (!slept.ok()) break;  // the actor is stopping: kill below
      }
      if (ProcessSupervisor::alive(pid)) ProcessSupervisor::kill_now(pid);
      spdlog::info("sandbox process stopped userId={} pid={}", user_id, pid);
    }
    std::string stopped = "stopped", none;
    co_return co_await mirror_user_stack(c, user_id, stopped, none, none);
  }

 private:
  // Polls GET /global/health until it answers 200, the process exits or the
  // start timeout passes.
  Task<Status> wait_healthy(ActorContext& c, ProcessSupervisor::Child child) {
    const auto deadline = std::chrono::steady_clock::now() + cfg_.start_timeout;
    while (true) {
      if (!ProcessSupervisor::alive(child.pid))
        co_return make_error("sandbox", "start_failed",
                             "The runtime process exited before it answered; its output: " + file_tail(child.log, 600));
      net::HttpRequest req;
      req.url = child.url + "/global/health";
      req.connect_timeout = std::chrono::milliseconds(500);
      req.total_timeout = std::chrono::milliseconds(1000);
      req.retry.max_attempts = 1;
      auto r = co_await c.http(std::move(req));
      if (r.ok() && r->status == 200) co_return Ok{};
      if (std::chrono::steady_clock::now() >= deadline)
        co_return make_error("sandbox", "start_timeout",
                             "The runtime did not answer " + child.url + "/global/health within " +
                                 std::to_string(cfg_.start_timeout.count()) + " ms; its output: " +
                                 file_tail(child.log, 600));
      auto slept = co_await c.sleep_for(std::chrono::milliseconds(100));
      if (!slept.ok()) co_return slept.error();
    }
  }

  ProcessConfig cfg_;
};

}  // namespace

Result<ProcessConfig> process_config_from(const ActorContext& c) {
  ProcessConfig cfg;
  cfg.command = split_spaces(c.config("OPENCODE_COMMAND").value_or(kDefaultCommand));
  if (cfg.command.empty()) return make_error("sandbox", "not_configured", "OPENCODE_COMMAND is empty.");
  // A program inside the user's directory ({dir}/...) is checked at start.
  if (cfg.command.front().find('{') == std::string::npos && proc::resolve_program(cfg.command.front()).empty())
    return make_error("sandbox", "not_configured",
                      "OPENCODE_COMMAND's program `" + cfg.command.front() + "` is not an executable on PATH.");
  cfg.data_dir = c.config("ANVIL_DATA_DIR").value_or("");
  cfg.root = c.config("SANDBOX_DIR").value_or(cfg.data_dir.empty() ? "" : cfg.data_dir + "/sandboxes");
  if (cfg.root.empty())
    return make_error("sandbox", "not_configured", "SANDBOX_PROVIDER=process needs SANDBOX_DIR (or a data directory).");
  try {
    cfg.port_start = std::stoi(c.config("USER_PORT_RANGE_START").value_or("0"));
    cfg.port_end = std::stoi(c.config("USER_PORT_RANGE_END").value_or("0"));
    if (auto t = c.config("OPENCODE_START_TIMEOUT_MS")) cfg.start_timeout = std::chrono::milliseconds(std::stoll(*t));
  } catch (const std::exception&) {
    return make_error("sandbox", "not_configured", "A numeric sandbox setting is not a number.");
  }
  if (cfg.port_start <= 0 || cfg.port_end < cfg.port_start || cfg.port_end > 65535)
    return make_error("sandbox", "not_configured",
                      "SANDBOX_PROVIDER=process needs USER_PORT_RANGE_START..USER_PORT_RANGE_END (1..65535).");
  const std::string bwrap = c.config("SANDBOX_BWRAP").value_or("auto");
  if (bwrap == "off") {
    cfg.bwrap = false;
  } else if (bwrap == "on" || bwrap == "auto") {
    cfg.bwrap = proc::bwrap_works();
    if (bwrap == "on" && !cfg.bwrap)
      return make_error("sandbox", "not_configured",
                        "SANDBOX_BWRAP=on but bubblewrap (bwrap) is missing or cannot create namespaces here.");
  } else {
    return make_error("sandbox", "not_configured", "SANDBOX_BWRAP is auto, on or off, not `" + bwrap + "`.");
  }
  cfg.env = env_list(c.config("SANDBOX_ENV").value_or(""));
  return cfg;
}

std::unique_ptr<SandboxProvider> make_process_provider(ProcessConfig cfg) {
  return std::make_unique<ProcessProvider>(std::move(cfg));
}

ProcessSupervisor& ProcessSupervisor::instance() {
  static ProcessSupervisor sup;
  return sup;
}

ProcessSupervisor::~ProcessSupervisor() {
  for (auto& [user, child] : children_) {
    ::kill(-child.pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& [user, child] : children_) {
    while (alive(child.pid) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (alive(child.pid)) kill_now(child.pid);
  }
}

bool ProcessSupervisor::alive(pid_t pid) { return proc::alive(pid); }

void ProcessSupervisor::kill_now(pid_t pid) { proc::kill_group_now(pid); }

std::optional<ProcessSupervisor::Child> ProcessSupervisor::running(const std::string& user_id) {
  std::lock_guard lock(mu_);
  auto it = children_.find(user_id);
  if (it == children_.end()) return std::nullopt;
  if (alive(it->second.pid)) return it->second;
  spdlog::warn("sandbox process of userId={} (pid {}) had exited; output: {}", user_id, it->second.pid,
               file_tail(it->second.log, 300));
  children_.erase(it);
  return std::nullopt;
}

Result<ProcessSupervisor::Child> ProcessSupervisor::ensure(const ProcessConfig& cfg, const std::string& user_id) {
  if (auto live = running(user_id)) return *live;
  std::lock_guard lock(mu_);
  if (auto it = children_.find(user_id); it != children_.end()) return it->second;  // started meanwhile

  const std::string owner = memory_owner(user_id);
  const std::string dir = cfg.root + "/" + owner;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("sandbox", "start_failed", "Cannot create " + dir + ": " + ec.message());
  const std::string dir_abs = fs::absolute(dir).lexically_normal().string();
  const std::string root_abs = fs::absolute(cfg.root).lexically_normal().string();
  const std::string log = root_abs + "/" + owner + ".log";

  // A stable port per user, moved past ports in use (ours or anyone's).
  std::set<int> ours;
  for (const auto& [u, ch] : children_) ours.insert(ch.port);
  const int span = cfg.port_end - cfg.port_start + 1;
  int port = 0;
  for (int probe = 0; probe < span && port == 0; ++probe) {
    const int candidate = stable_port(user_id, cfg.port_start, cfg.port_end, probe);
    if (!ours.count(candidate) && port_free(candidate)) port = candidate;
  }
  if (port == 0)
    return make_error("sandbox", "no_port",
                      "Every port of USER_PORT_RANGE_START..USER_PORT_RANGE_END is taken; widen the range.");

  std::vector<std::string> command;
  for (const auto& tok : cfg.command)
    command.push_back(
        replace_all(replace_all(replace_all(tok, "{port}", std::to_string(port)), "{dir}", dir_abs), "{user}", owner));
  std::vector<std::string> envp = {"PATH=" + proc::path_env(), "HOME=" + dir_abs, "TMPDIR=/tmp"};
  if (const char* lang = std::getenv("LANG")) envp.push_back(std::string("LANG=") + lang);
  for (const auto& e : cfg.env) envp.push_back(e);

  std::string exe;
  std::vector<std::string> argv;
  if (cfg.bwrap) {
    // Other users' directories (the root) and the node's data are not visible.
    proc::BwrapSpec spec{dir_abs, {}, dir_abs};
    if (!cfg.data_dir.empty()) spec.hidden.push_back(fs::absolute(cfg.data_dir).lexically_normal().string());
    spec.hidden.push_back(root_abs);
    argv = proc::bwrap_argv(spec, command);
    exe = argv.front();
  } else {
    exe = proc::resolve_program(command.front());
    argv = command;
  }
  if (exe.empty()) return make_error("sandbox", "not_configured", "`" + argv.front() + "` is not on PATH.");
  auto pid = proc::spawn_detached(exe, argv, envp, dir_abs, log);
  if (!pid.ok()) return pid.error();
  Child child{*pid, port, "http://127.0.0.1:" + std::to_string(port), log};
  children_[user_id] = child;
  spdlog::info("sandbox process started userId={} pid={} port={} bwrap={}", user_id, *pid, port, cfg.bwrap);
  child.started_now = true;
  return child;
}

pid_t ProcessSupervisor::terminate(const std::string& user_id) {
  std::lock_guard lock(mu_);
  auto it = children_.find(user_id);
  if (it == children_.end()) return 0;
  const pid_t pid = it->second.pid;
  children_.erase(it);
  ::kill(-pid, SIGTERM);
  return pid;
}

void ProcessSupervisor::discard(const std::string& user_id, pid_t pid) {
  {
    std::lock_guard lock(mu_);
    auto it = children_.find(user_id);
    if (it != children_.end() && it->second.pid == pid) children_.erase(it);
  }
  kill_now(pid);
}

std::string file_tail(const std::string& path, size_t max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(in.tellg());
  const size_t from = size > max ? size - max : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

}  // namespace anvil::growqr
