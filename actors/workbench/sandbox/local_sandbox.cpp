#include "actors/workbench/sandbox/local_sandbox.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "base/proc/blocking.hpp"
#include "base/proc/bwrap.hpp"
#include "base/proc/process.hpp"

namespace anvil::workbench {
namespace fs = std::filesystem;

namespace {

Error sandbox_error(std::string code, std::string message) {
  return make_error("sandbox", std::move(code), std::move(message));
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::string normal_abs(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

// "a/b" stays inside the sandbox; "", "." are the sandbox itself; absolute
// paths and ".." that climb out are refused.
Result<std::string> resolve_cwd(const std::string& dir, const std::string& cwd) {
  if (cwd.empty() || cwd == ".") return dir;
  const fs::path rel = fs::path(cwd).lexically_normal();
  if (rel.is_absolute() || rel.empty() || *rel.begin() == "..")
    return sandbox_error("invalid_command", "cwd `" + cwd + "` is not a path inside the sandbox.");
  std::string out = (fs::path(dir) / rel).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  std::error_code ec;
  if (!fs::is_directory(out, ec))
    return sandbox_error("invalid_command", "cwd `" + cwd + "` is not a directory of the sandbox.");
  return out;
}

}  // namespace

Result<std::shared_ptr<LocalSandboxProvider>> LocalSandboxProvider::make(SandboxConfig cfg) {
  if (cfg.root.empty()) return sandbox_error("not_configured", "The local sandbox provider needs a root directory.");
  bool bwrap = false;
  if (cfg.bwrap == "on" || cfg.bwrap == "auto") {
    bwrap = proc::bwrap_works();
    if (cfg.bwrap == "on" && !bwrap)
      return sandbox_error("not_configured",
                           "bwrap=on but bubblewrap (bwrap) is missing or cannot create namespaces here.");
  } else if (cfg.bwrap != "off") {
    return sandbox_error("not_configured", "bwrap is auto, on or off, not `" + cfg.bwrap + "`.");
  }
  if (cfg.default_timeout.count() <= 0) cfg.default_timeout = std::chrono::milliseconds(60'000);
  std::error_code ec;
  fs::create_directories(cfg.root, ec);
  if (ec) return sandbox_error("not_configured", "Cannot create the sandbox root " + cfg.root + ": " + ec.message());
  cfg.root = normal_abs(cfg.root);
  for (auto& h : cfg.hidden) h = normal_abs(h);
  return std::shared_ptr<LocalSandboxProvider>(new LocalSandboxProvider(std::move(cfg), bwrap));
}

Result<std::string> LocalSandboxProvider::dir_of(const std::string& sandbox_id) const {
  if (!valid_id(sandbox_id))
    return sandbox_error("invalid_id", "A sandbox id is 1-128 of [A-Za-z0-9._-] (not . or ..), not `" +
                                           sandbox_id.substr(0, 200) + "`.");
  return cfg_.root + "/" + sandbox_id;
}

Result<std::string> LocalSandboxProvider::create(const std::string& sandbox_id) {
  auto dir = dir_of(sandbox_id);
  if (!dir.ok()) return dir;
  std::error_code ec;
  fs::create_directories(*dir, ec);
  if (ec) return sandbox_error("io_failed", "Cannot create " + *dir + ": " + ec.message());
  return dir;
}

bool LocalSandboxProvider::exists(const std::string& sandbox_id) const {
  auto dir = dir_of(sandbox_id);
  std::error_code ec;
  return dir.ok() && fs::is_directory(*dir, ec);
}

Status LocalSandboxProvider::destroy(const std::string& sandbox_id) {
  auto dir = dir_of(sandbox_id);
  if (!dir.ok()) return dir.error();
  {
    std::lock_guard lock(mu_);
    std::error_code ec;
    if (!fs::is_directory(*dir, ec)) return sandbox_error("not_found", "No sandbox `" + sandbox_id + "`.");
    // Removed under the lock: a command starting now finds no directory,
    // and one that registered before is killed here.
    if (auto it = running_.find(sandbox_id); it != running_.end())
      for (pid_t pgid : it->second) proc::signal_group(pgid, SIGKILL);
    fs::remove_all(*dir, ec);
    if (ec) return sandbox_error("io_failed", "Cannot remove " + *dir + ": " + ec.message());
  }
  return Ok{};
}

int LocalSandboxProvider::kill_running(const std::string& sandbox_id) {
  std::lock_guard lock(mu_);
  auto it = running_.find(sandbox_id);
  if (it == running_.end()) return 0;
  for (pid_t pgid : it->second) proc::signal_group(pgid, SIGKILL);
  return static_cast<int>(it->second.size());
}

int LocalSandboxProvider::running(const std::string& sandbox_id) const {
  std::lock_guard lock(mu_);
  auto it = running_.find(sandbox_id);
  return it == running_.end() ? 0 : static_cast<int>(it->second.size());
}

Task<Result<ExecResult>> LocalSandboxProvider::exec(const std::string& sandbox_id, ExecRequest req) {
  // Not a coroutine itself: the id is copied now, before the caller's
  // reference can go, and the command runs on its own thread.
  std::function<Result<ExecResult>()> fn = [self = shared_from_this(), id = sandbox_id,
                                            req = std::move(req)]() -> Result<ExecResult> {
    auto dir = self->dir_of(id);
    if (!dir.ok()) return dir.error();
    return self->run_now(id, *dir, req);
  };
  return proc::run_on_own_thread<ExecResult>(std::move(fn));
}

Result<ExecResult> LocalSandboxProvider::run_now(const std::string& sandbox_id, const std::string& dir,
                                                 const ExecRequest& req) {
  if (req.argv.empty() || req.argv.front().empty())
    return sandbox_error("invalid_command", "A command needs a program (argv is empty).");
  if (!exists(sandbox_id)) return sandbox_error("not_found", "No sandbox `" + sandbox_id + "`.");
  auto cwd = resolve_cwd(dir, req.cwd);
  if (!cwd.ok()) return cwd.error();

  // Only what a command needs; the node's environment (its secrets) stays out.
  std::vector<std::pair<std::string, std::string>> vars = {{"PATH", proc::path_env()}, {"HOME", dir}, {"TMPDIR", "/tmp"}};
  if (const char* lang = std::getenv("LANG")) vars.emplace_back("LANG", lang);
  for (const auto& [name, value] : req.env) {
    if (name.empty() || name.find('=') != std::string::npos)
      return sandbox_error("invalid_command", "`" + name + "` is not an environment variable name.");
    auto it = std::find_if(vars.begin(), vars.end(), [&](const auto& v) { return v.first == name; });
    if (it != vars.end())
      it->second = value;
    else
      vars.emplace_back(name, value);
  }

  proc::RunSpec spec;
  for (const auto& [name, value] : vars) spec.env.push_back(name + "=" + value);
  if (bwrap_) {
    proc::BwrapSpec b{dir, cfg_.hidden, *cwd};
    b.hidden.push_back(cfg_.root);  // every other sandbox
    spec.argv = proc::bwrap_argv(b, req.argv);
  } else {
    spec.argv = req.argv;
    spec.cwd = *cwd;
  }
  spec.stdin_data = req.stdin_data;
  spec.timeout = req.timeout.count() > 0 ? req.timeout : cfg_.default_timeout;
  spec.max_output = cfg_.max_output;
  pid_t started = 0;
  spec.on_pid = [this, &sandbox_id, &started](pid_t pid) {
    std::lock_guard lock(mu_);
    if (pid == 0) {  // about to be reaped: its pid may be reused from now on
      auto it = running_.find(sandbox_id);
      if (it == running_.end()) return;
      it->second.erase(started);
      if (it->second.empty()) running_.erase(it);
      return;
    }
    started = pid;
    running_[sandbox_id].insert(pid);
    // destroy() ran between the check above and the start: nothing may run
    // in a sandbox that is gone.
    std::error_code ec;
    if (!fs::is_directory(cfg_.root + "/" + sandbox_id, ec)) proc::signal_group(pid, SIGKILL);
  };
  auto out = proc::run(spec);
  if (!out.ok()) return sandbox_error("exec_failed", out.error().message);
  ExecResult r;
  r.exit_code = out->exit_code;
  r.stdout_data = std::move(out->out);
  r.stderr_data = std::move(out->err);
  r.timed_out = out->timed_out;
  r.truncated = out->truncated;
  return r;
}

}  // namespace anvil::workbench
