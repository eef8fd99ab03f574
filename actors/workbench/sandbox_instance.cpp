// sandboxInstance [orgId, providerId, sandboxId]: one sandbox (a leaf),
// created and released by its task. A sandbox of the local provider is a
// directory outside the node's data directory; commands run in it under
// bubblewrap when present. Working-tree git runs here, never on the node.
#include <mutex>

#include "actors/workbench/common.hpp"
#include "actors/workbench/sandbox/local_sandbox.hpp"
#include "actors/workbench/workbench.hpp"

namespace anvil::workbench {
namespace {

constexpr int64_t kMaxTimeoutMs = 30 * 60 * 1000;

// One provider per sandbox root, made on first use from the node's config:
// WORKBENCH_SANDBOX_DIR (default <TMPDIR>/anvil-workbench-sandboxes, never
// inside ANVIL_DATA_DIR) and WORKBENCH_SANDBOX_BWRAP (auto|on|off).
Result<std::shared_ptr<LocalSandboxProvider>> provider(const ActorContext& c) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<LocalSandboxProvider>> made;
  SandboxConfig cfg;
  if (auto dir = c.config("WORKBENCH_SANDBOX_DIR"); dir && !dir->empty()) {
    cfg.root = *dir;
  } else {
    const char* tmp = std::getenv("TMPDIR");
    cfg.root = std::string(tmp && *tmp ? tmp : "/tmp") + "/anvil-workbench-sandboxes";
  }
  if (auto data = c.config("ANVIL_DATA_DIR"); data && !data->empty()) {
    std::string d = *data;
    if (cfg.root == d || cfg.root.rfind(d + "/", 0) == 0)
      return not_configured("WORKBENCH_SANDBOX_DIR must be outside the node's data directory (it holds git working trees).");
    cfg.hidden.push_back(d);  // commands never see the node's storage
  }
  cfg.bwrap = c.config("WORKBENCH_SANDBOX_BWRAP").value_or("auto");
  std::lock_guard lk(mu);
  const std::string id = cfg.root + "\n" + cfg.bwrap;
  if (auto it = made.find(id); it != made.end()) return it->second;
  auto p = LocalSandboxProvider::make(std::move(cfg));
  if (!p.ok()) return p.error();
  made.emplace(id, *p);
  return *p;
}

const std::string& sandbox_id(const ActorContext& c) { return c.key().at(2); }

Status check_provider(const ActorContext& c) {
  if (c.key().at(1) != LocalSandboxProvider::kId)
    return not_configured("Unknown sandbox provider `" + c.key().at(1) + "` (this node has `local`).");
  return Ok{};
}

ActorKey task_key(const ActorContext& c) {
  ActorKey k;
  if (const Value* t = c.state().find("task"); t && t->is_array())
    for (const auto& part : t->as_array()) k.push_back(part.is_string() ? part.as_string() : "");
  return k;
}

Value exec_value(const ExecResult& r) {
  return obj({{"exitCode", Value(r.exit_code)},
              {"stdout", Value(r.stdout_data)},
              {"stderr", Value(r.stderr_data)},
              {"timedOut", Value(r.timed_out)},
              {"truncated", Value(r.truncated)}});
}

Task<Result<ExecResult>> run(ActorContext& c, std::shared_ptr<LocalSandboxProvider> p, ExecRequest req) {
  co_return co_await c.wait(p->exec(sandbox_id(c), std::move(req)));
}

// _provision({task, cloneUrl, branch}) from the task that owns it: the
// directory, and a clone of the repository checked out on the task's branch.
Task<Result<Value>> provision(ActionContext& c, Array args) {
  auto o = object_arg(args);
  if (!o.ok()) co_return o.error();
  const Value* task = o->find("task");
  if (!task || !task->is_array() || task->as_array().size() != 3) co_return invalid_argument("`task` must be its key.");
  ActorKey owner;
  for (const auto& part : task->as_array()) owner.push_back(part.is_string() ? part.as_string() : "");
  if (owner.at(0) != c.key().at(0)) co_return forbidden("A sandbox belongs to a task of its own organization.");
  if (auto st = require_caller(c, "task", owner); !st.ok()) co_return st.error();
  if (auto st = check_provider(c); !st.ok()) co_return st.error();
  if (str_or(c.state(), "status") == "ready")
    co_return obj({{"sandboxId", Value(sandbox_id(c))}, {"status", "ready"}});
  c.mutate_state()["task"] = *task;
  c.mutate_state()["status"] = "provisioning";
  auto p = provider(c);
  if (!p.ok()) co_return p.error();
  auto dir = (*p)->create(sandbox_id(c));
  if (!dir.ok()) co_return dir.error();
  c.mutate_state()["dir"] = *dir;

  const std::string url = str_or(*o, "cloneUrl");
  const std::string branch = str_or(*o, "branch");
  if (!url.empty()) {
    if (auto st = check_branch(branch); !st.ok()) co_return st.error();
    // Clone, then the task's branch: the remote one when it exists, else a
    // new one from the default branch.
    ExecRequest clone;
    clone.argv = {"sh", "-c",
                  "set -e\n"
                  "rm -rf repo\n"
                  "git clone --quiet \"$1\" repo\n"
                  "cd repo\n"
                  "if git show-ref --verify --quiet \"refs/remotes/origin/$2\"; then git checkout --quiet -B \"$2\" \"origin/$2\";"
                  " else git checkout --quiet -b \"$2\"; fi\n"
                  "git config user.name workbench\n"
                  "git config user.email workbench@localhost\n",
                  "provision", url, branch};
    clone.timeout = std::chrono::milliseconds(300'000);
    auto ran = co_await run(c, *p, std::move(clone));
    if (!ran.ok()) co_return ran.error();
    if (ran->exit_code != 0) {
      c.mutate_state()["status"] = "failed";
      co_return make_error("workbench", "provision_failed", "git clone failed in the sandbox: " + ran->stderr_data,
                           obj({{"exitCode", Value(ran->exit_code)}}));
    }
  }
  c.mutate_state()["status"] = "ready";
  co_return obj({{"sandboxId", Value(sandbox_id(c))}, {"status", "ready"}, {"dir", Value(*dir)}});
}

// executeInSandbox({argv, cwd?, timeoutMs?, env?, stdin?}) -> {exitCode,
// stdout, stderr, timedOut, truncated}. A non-zero exit is a result, not an
// error.
Task<Result<Value>> execute(ActionContext& c, Array args) {
  auto o = object_arg(args);
  if (!o.ok()) co_return o.error();
  if (str_or(c.state(), "status") != "ready")
    co_return conflict("Sandbox `" + sandbox_id(c) + "` is " + str_or(c.state(), "status") + ", not ready.");
  const Value* argv = o->find("argv");
  if (!argv || !argv->is_array() || argv->as_array().empty())
    co_return invalid_argument("`argv` must be a non-empty array of strings.");
  ExecRequest req;
  for (const auto& a : argv->as_array()) {
    if (!a.is_string()) co_return invalid_argument("`argv` must be a non-empty array of strings.");
    req.argv.push_back(a.as_string());
  }
  if (const Value* env = o->find("env"); env && env->is_object())
    for (const auto& [k, v] : env->as_object())
      if (v.is_string()) req.env.emplace_back(k, v.as_string());
  req.cwd = str_or(*o, "cwd");
  req.stdin_data = str_or(*o, "stdin");
  req.timeout = std::chrono::milliseconds(std::clamp<int64_t>(int_or(*o, "timeoutMs", 60'000), 1, kMaxTimeoutMs));
  auto p = provider(c);
  if (!p.ok()) co_return p.error();
  auto ran = co_await run(c, *p, std::move(req));
  if (!ran.ok()) co_return ran.error();
  co_return exec_value(*ran);
}

// The status a session's runtime writes in the sandbox
// (.workbench/sessions/<sessionId>/status); "unknown" until it does.
Task<Result<Value>> read_session_status(ActionContext& c, Array args) {
  auto session = string_arg(args, 0, "sessionId", 128);
  if (!session.ok()) co_return session.error();
  if (auto st = check_id("sessionId", *session); !st.ok()) co_return st.error();
  if (str_or(c.state(), "status") != "ready") co_return Value("unavailable");
  auto p = provider(c);
  if (!p.ok()) co_return p.error();
  ExecRequest req;
  req.argv = {"cat", ".workbench/sessions/" + *session + "/status"};
  req.timeout = std::chrono::milliseconds(10'000);
  auto ran = co_await run(c, *p, std::move(req));
  if (!ran.ok()) co_return ran.error();
  if (ran->exit_code != 0) co_return Value("unknown");
  std::string s = ran->stdout_data.substr(0, 64);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  co_return Value(s.empty() ? std::string("unknown") : s);
}

Status remove_dir(ActorContext& c) {
  auto p = provider(c);
  if (!p.ok()) return p.error();
  if ((*p)->exists(sandbox_id(c))) return (*p)->destroy(sandbox_id(c));
  return Ok{};
}

// _release from its task (a newer sandbox took over): the directory goes,
// the record stays.
Result<Value> release(ActionContext& c, const Array&) {
  if (auto st = require_caller(c, "task", task_key(c)); !st.ok()) return st.error();
  if (auto st = remove_dir(c); !st.ok()) return st.error();
  c.mutate_state()["status"] = "released";
  return Value(true);
}

Result<Value> destroy(ActionContext& c, const Array&) {
  if (auto st = require_caller(c, "task", task_key(c)); !st.ok()) return st.error();
  if (auto st = remove_dir(c); !st.ok()) return st.error();
  c.destroy();
  return Value(true);
}

Result<Value> status(ActionContext& c, const Array&) {
  return obj({{"sandboxId", Value(sandbox_id(c))},
              {"providerId", Value(c.key().at(1))},
              {"status", *c.state().find("status")},
              {"task", *c.state().find("task")}});
}

}  // namespace

ActorDefinition sandbox_instance_actor() {
  ActorDefinition def("sandboxInstance");
  def.initial_state(obj({{"status", "new"}, {"task", Value()}, {"dir", ""}}))
      .created_only_by({"task"}, child_refusal("sandboxInstance", "task"))
      .async_action("_provision", provision)
      .async_action("executeInSandbox", execute)
      .async_action("readSessionStatus", read_session_status)
      .action("_release", release)
      .action("_destroy", destroy)
      .action("status", status);
  guard_internal(def);
  return def;
}

}  // namespace anvil::workbench
