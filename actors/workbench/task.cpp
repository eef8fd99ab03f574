// task [orgId, repoId, taskId]: one task = one branch. The coordinator of
// its sessions and sandboxes (index tables task_workbench_sessions and
// task_sandboxes); task-global state: title, status, branch, PR, the active
// session and the active sandbox. Pushes its summary to its repository.
#include "actors/workbench/common.hpp"
#include "actors/workbench/workbench.hpp"

namespace anvil::workbench {
namespace {

const std::vector<std::string> kMigrations = {
    std::string(kOutboxTable) + ";" +
        // Coordinator index of TaskSessionActor instances (session metadata;
        // drafts are per user and live on authUser).
        "CREATE TABLE task_workbench_sessions (session_id TEXT PRIMARY KEY, title TEXT NOT NULL, "
        "model TEXT NOT NULL, runtime_status TEXT NOT NULL, message_count INTEGER NOT NULL, last_message TEXT, "
        "active INTEGER NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
        // Coordinator index of SandboxInstanceActor instances (sandbox history).
        "CREATE TABLE task_sandboxes (provider_id TEXT NOT NULL, sandbox_id TEXT NOT NULL, status TEXT NOT NULL, "
        "active INTEGER NOT NULL, created_at INTEGER NOT NULL, released_at INTEGER, "
        "PRIMARY KEY (provider_id, sandbox_id));",
};

const std::string& org_id(const ActorContext& c) { return c.key().at(0); }
const std::string& repo_id(const ActorContext& c) { return c.key().at(1); }
const std::string& task_id(const ActorContext& c) { return c.key().at(2); }

Value summary(const ActorContext& c) {
  const Value& s = c.state();
  return obj({{"taskId", Value(task_id(c))},
              {"repoId", Value(repo_id(c))},
              {"title", *s.find("title")},
              {"status", *s.find("status")},
              {"branch", *s.find("branch")},
              {"pr", *s.find("pr")},
              {"version", *s.find("version")}});
}

// A change to the task-global state: next version, subscribers told, the
// summary pushed to the repository (durably, with this turn).
Status changed(ActorContext& c) {
  c.mutate_state()["version"] = int_or(c.state(), "version", 0) + 1;
  Value s = summary(c);
  Object fields{{"task", s}};
  publish(c, "taskUpdated", std::move(fields));
  return outbox_call(c, "repository", {org_id(c), repo_id(c)}, "_taskChanged", std::move(s));
}

Value session_row(const Value& r) {
  return obj({{"sessionId", *r.find("session_id")},
              {"title", *r.find("title")},
              {"model", *r.find("model")},
              {"runtimeStatus", *r.find("runtime_status")},
              {"messageCount", *r.find("message_count")},
              {"lastMessage", *r.find("last_message")},
              {"active", Value(int_or(r, "active", 0) != 0)}});
}

Value sandbox_row(const Value& r) {
  return obj({{"providerId", *r.find("provider_id")},
              {"sandboxId", *r.find("sandbox_id")},
              {"status", *r.find("status")},
              {"active", Value(int_or(r, "active", 0) != 0)},
              {"createdAt", *r.find("created_at")},
              {"releasedAt", *r.find("released_at")}});
}

Result<Array> sessions(ActorContext& c) {
  auto rows = c.db().query(
      "SELECT session_id, title, model, runtime_status, message_count, last_message, active FROM "
      "task_workbench_sessions ORDER BY created_at, session_id");
  if (!rows.ok()) return rows.error();
  Array out;
  for (const auto& r : *rows) out.push_back(session_row(r));
  return out;
}

Result<Array> sandboxes(ActorContext& c) {
  auto rows = c.db().query(
      "SELECT provider_id, sandbox_id, status, active, created_at, released_at FROM task_sandboxes "
      "ORDER BY created_at, sandbox_id");
  if (!rows.ok()) return rows.error();
  Array out;
  for (const auto& r : *rows) out.push_back(sandbox_row(r));
  return out;
}

// ---- lifecycle (from the repository)

Result<Value> init(ActionContext& c, const Array& args) {
  if (auto st = require_caller(c, "repository", {org_id(c), repo_id(c)}); !st.ok()) return st.error();
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  if (int_or(c.state(), "version", 0) == 0) {  // first time; a repeat answers the current summary
    Value& s = c.mutate_state();
    s["title"] = str_or(*o, "title");
    s["branch"] = str_or(*o, "branch");
    s["repoName"] = str_or(*o, "repoName");
    s["version"] = 1;
  }
  return summary(c);
}

Task<Result<Value>> destroy(ActionContext& c, Array) {
  if (auto st = require_caller(c, "repository", {org_id(c), repo_id(c)}); !st.ok()) co_return st.error();
  auto rows = c.db().query("SELECT session_id FROM task_workbench_sessions");
  if (!rows.ok()) co_return rows.error();
  for (const auto& r : *rows) {
    std::string type = "taskSession";
    std::string action = "_destroy";
    ActorKey key{org_id(c), repo_id(c), task_id(c), str_or(r, "session_id")};
    auto done = co_await c.call(std::move(type), std::move(key), std::move(action), Array{});
    if (!done.ok() && done.error().code != "not_found") co_return done.error();
  }
  auto boxes = c.db().query("SELECT provider_id, sandbox_id FROM task_sandboxes");
  if (!boxes.ok()) co_return boxes.error();
  for (const auto& r : *boxes) {
    std::string type = "sandboxInstance";
    std::string action = "_destroy";
    ActorKey key{org_id(c), str_or(r, "provider_id"), str_or(r, "sandbox_id")};
    auto done = co_await c.call(std::move(type), std::move(key), std::move(action), Array{});
    if (!done.ok() && done.error().code != "not_found") co_return done.error();
  }
  c.destroy();
  co_return Value(true);
}

// ---- task-global state

Result<Value> set_status(ActionContext& c, const Array& args) {
  auto status = string_arg(args, 0, "status", 64);
  if (!status.ok()) return status.error();
  if (str_or(c.state(), "status") == *status) return summary(c);
  c.mutate_state()["status"] = *status;
  if (auto st = changed(c); !st.ok()) return st.error();
  return summary(c);
}

Result<Value> set_title(ActionContext& c, const Array& args) {
  auto title = string_arg(args, 0, "title", 500);
  if (!title.ok()) return title.error();
  if (str_or(c.state(), "title") == *title) return summary(c);
  c.mutate_state()["title"] = *title;
  if (auto st = changed(c); !st.ok()) return st.error();
  return summary(c);
}

// repository -> a pull request of this task's branch changed on GitHub.
Result<bool> pull_request_changed(ActionContext& c, const Value& item) {
  if (auto st = require_caller(c, "repository", {org_id(c), repo_id(c)}); !st.ok()) return st.error();
  const Value* e = &item;
  if (str_or(*e, "branch") != str_or(c.state(), "branch")) return false;  // renamed since
  Value pr = obj({{"number", Value(int_or(*e, "number", 0))},
                  {"state", Value(str_or(*e, "state"))},
                  {"title", Value(str_or(*e, "title"))}});
  if (c.state().find("pr") && *c.state().find("pr") == pr) return false;
  c.mutate_state()["pr"] = pr;
  if (auto st = changed(c); !st.ok()) return st.error();
  return true;
}

// ---- sessions (at most one active; older ones stay in the index)

Task<Result<Value>> start_session(ActionContext& c, Array args) {
  Value o = args.empty() || args[0].is_nullish() ? Value(Object{}) : args[0];
  if (!o.is_object()) co_return invalid_argument("startSession takes an object.");
  const int64_t n = int_or(c.state(), "sessionCount", 0) + 1;
  auto session_id = string_field(o, "sessionId", 128, "s" + std::to_string(n));
  if (!session_id.ok()) co_return session_id.error();
  if (auto st = check_id("sessionId", *session_id); !st.ok()) co_return st.error();
  auto title = string_field(o, "title", 200, "Session " + std::to_string(n));
  if (!title.ok()) co_return title.error();
  auto model = string_field(o, "model", 128, std::string("default"));
  if (!model.ok()) co_return model.error();
  auto existing = c.db().query(
      "SELECT session_id, title, model, runtime_status, message_count, last_message, active FROM "
      "task_workbench_sessions WHERE session_id = ?",
      {Value(*session_id)});
  if (!existing.ok()) co_return existing.error();
  if (!existing->empty()) co_return session_row((*existing)[0]);

  std::string type = "taskSession";
  std::string action = "_init";
  ActorKey key{org_id(c), repo_id(c), task_id(c), *session_id};
  Array init_args{obj({{"title", Value(*title)}, {"model", Value(*model)}})};
  auto made = co_await c.call(std::move(type), std::move(key), std::move(action), std::move(init_args));
  if (!made.ok()) co_return made.error();

  const int64_t now = now_unix_ms();
  if (auto d = c.db().exec("UPDATE task_workbench_sessions SET active = 0 WHERE active = 1"); !d.ok()) co_return d.error();
  auto ins = c.db().exec(
      "INSERT OR IGNORE INTO task_workbench_sessions (session_id, title, model, runtime_status, message_count, active, "
      "version, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 1, ?, ?, ?)",
      {Value(*session_id), Value(*title), Value(*model), Value(str_or(*made, "runtimeStatus")),
       Value(int_or(*made, "version", 0)), Value(now), Value(now)});
  if (!ins.ok()) co_return ins.error();
  c.mutate_state()["sessionCount"] = n;
  c.mutate_state()["activeSessionId"] = *session_id;
  auto row = c.db().query(
      "SELECT session_id, title, model, runtime_status, message_count, last_message, active FROM "
      "task_workbench_sessions WHERE session_id = ?",
      {Value(*session_id)});
  if (!row.ok()) co_return row.error();
  Value session = session_row((*row)[0]);
  publish(c, "sessionUpdated", {{"session", session}, {"activeSessionId", Value(*session_id)}});
  // The session follows the task's active sandbox (its runtime runs there).
  if (const Value* box = c.state().find("activeSandbox"); box && box->is_object()) {
    if (auto st = outbox_call(c, "taskSession", {org_id(c), repo_id(c), task_id(c), *session_id}, "_attachSandbox", *box);
        !st.ok())
      co_return st.error();
  }
  co_return session;
}

// taskSession -> its summary changed (transcript length, model, runtime status).
Result<bool> session_changed(ActionContext& c, const Value& item) {
  const Value* s = &item;
  const std::string session_id = str_or(*s, "sessionId");
  if (auto st = require_caller(c, "taskSession", {org_id(c), repo_id(c), task_id(c), session_id}); !st.ok())
    return st.error();
  auto up = c.db().exec(
      "UPDATE task_workbench_sessions SET title = ?, model = ?, runtime_status = ?, message_count = ?, "
      "last_message = ?, version = ?, updated_at = ? WHERE session_id = ? AND version < ?",
      {Value(str_or(*s, "title")), Value(str_or(*s, "model")), Value(str_or(*s, "runtimeStatus")),
       Value(int_or(*s, "messageCount", 0)), s->find("lastMessage") ? *s->find("lastMessage") : Value(),
       Value(int_or(*s, "version", 0)), Value(now_unix_ms()), Value(session_id), Value(int_or(*s, "version", 0))});
  if (!up.ok()) return up.error();
  if (up->changes == 0) return false;  // stale, repeated, or not ours
  auto row = c.db().query(
      "SELECT session_id, title, model, runtime_status, message_count, last_message, active FROM "
      "task_workbench_sessions WHERE session_id = ?",
      {Value(session_id)});
  if (!row.ok()) return row.error();
  publish(c, "sessionUpdated", {{"session", session_row((*row)[0])}});
  return true;
}

// ---- sandboxes (at most one active; older ones stay in task_sandboxes)

std::string clone_url(const ActorContext& c) {
  auto base = c.config("GITHUB_GIT_URL");
  const std::string repo = str_or(c.state(), "repoName");
  if (!base || base->empty() || repo.find('/') == std::string::npos) return "";
  std::string b = *base;
  while (!b.empty() && b.back() == '/') b.pop_back();
  return b + "/" + repo + ".git";
}

// provisionSandbox({replace?}): the task's active sandbox — the ready one it
// has, or a new one (with replace: always a new one; the old one is released
// and stays in task_sandboxes).
Task<Result<Value>> provision_sandbox(ActionContext& c, Array args) {
  const bool replace = !args.empty() && args[0].is_object() && args[0].find("replace") &&
                       args[0].find("replace")->is_bool() && args[0].find("replace")->as_bool();
  if (const Value* box = c.state().find("activeSandbox"); !replace && box && box->is_object()) {
    auto row = c.db().query(
        "SELECT provider_id, sandbox_id, status, active, created_at, released_at FROM task_sandboxes "
        "WHERE provider_id = ? AND sandbox_id = ?",
        {Value(str_or(*box, "providerId")), Value(str_or(*box, "sandboxId"))});
    if (!row.ok()) co_return row.error();
    if (!row->empty() && str_or((*row)[0], "status") == "ready") co_return sandbox_row((*row)[0]);
  }
  if (const Value* busy = c.vars().find("provisioning"); busy && busy->is_bool())
    co_return conflict("A sandbox is being provisioned for this task.");
  c.vars()["provisioning"] = true;
  const int64_t n = int_or(c.state(), "sandboxCount", 0) + 1;
  c.mutate_state()["sandboxCount"] = n;
  const std::string provider = "local";
  const std::string sandbox_id = repo_id(c) + "-" + task_id(c) + "-" + std::to_string(n);
  const int64_t now = now_unix_ms();
  // Recorded before it exists (status provisioning): a crash leaves a row
  // the next provisionSandbox supersedes, never an unknown sandbox.
  auto ins = c.db().exec(
      "INSERT INTO task_sandboxes (provider_id, sandbox_id, status, active, created_at) VALUES (?, ?, 'provisioning', 0, ?)",
      {Value(provider), Value(sandbox_id), Value(now)});
  if (!ins.ok()) {
    c.vars()["provisioning"] = Value();
    co_return ins.error();
  }
  std::string type = "sandboxInstance";
  std::string action = "_provision";
  ActorKey key{org_id(c), provider, sandbox_id};
  Array prov_args{obj({{"task", key_value(c.key())}, {"cloneUrl", Value(clone_url(c))}, {"branch", *c.state().find("branch")}})};
  auto made = co_await c.call(std::move(type), std::move(key), std::move(action), std::move(prov_args));
  c.vars()["provisioning"] = Value();
  if (!made.ok()) {
    (void)c.db().exec("UPDATE task_sandboxes SET status = 'failed', released_at = ? WHERE sandbox_id = ?",
                      {Value(now_unix_ms()), Value(sandbox_id)});
    publish(c, "sandboxUpdated", {{"sandbox", obj({{"providerId", Value(provider)}, {"sandboxId", Value(sandbox_id)},
                                                   {"status", Value("failed")}})}});
    co_return made.error();
  }
  // The new one becomes the active sandbox; the previous one is released.
  std::optional<Value> previous;
  if (const Value* box = c.state().find("activeSandbox"); box && box->is_object()) previous = *box;
  if (auto d = c.db().exec("UPDATE task_sandboxes SET active = 0, status = CASE WHEN status = 'ready' THEN 'released' "
                           "ELSE status END, released_at = ? WHERE active = 1",
                           {Value(now_unix_ms())});
      !d.ok())
    co_return d.error();
  if (auto u = c.db().exec("UPDATE task_sandboxes SET status = 'ready', active = 1 WHERE provider_id = ? AND sandbox_id = ?",
                           {Value(provider), Value(sandbox_id)});
      !u.ok())
    co_return u.error();
  Value active = obj({{"providerId", Value(provider)}, {"sandboxId", Value(sandbox_id)}});
  c.mutate_state()["activeSandbox"] = active;
  if (previous) {
    if (auto st = outbox_call(c, "sandboxInstance", {org_id(c), str_or(*previous, "providerId"), str_or(*previous, "sandboxId")},
                              "_release", Value(true));
        !st.ok())
      co_return st.error();
  }
  if (const std::string session = str_or(c.state(), "activeSessionId"); !session.empty()) {
    if (auto st = outbox_call(c, "taskSession", {org_id(c), repo_id(c), task_id(c), session}, "_attachSandbox", active);
        !st.ok())
      co_return st.error();
  }
  auto row = c.db().query(
      "SELECT provider_id, sandbox_id, status, active, created_at, released_at FROM task_sandboxes "
      "WHERE provider_id = ? AND sandbox_id = ?",
      {Value(provider), Value(sandbox_id)});
  if (!row.ok()) co_return row.error();
  Value out = sandbox_row((*row)[0]);
  publish(c, "sandboxUpdated", {{"sandbox", out}});
  co_return out;
}

Result<Value> active_sandbox(const ActorContext& c) {
  const Value* box = c.state().find("activeSandbox");
  if (!box || !box->is_object())
    return make_error("workbench", "no_sandbox", "The task has no active sandbox; call provisionSandbox first.");
  return *box;
}

// executeInSandbox({argv, cwd?, timeoutMs?, env?}) in the task's active sandbox.
Task<Result<Value>> execute_in_sandbox(ActionContext& c, Array args) {
  auto box = active_sandbox(c);
  if (!box.ok()) co_return box.error();
  std::string type = "sandboxInstance";
  std::string action = "executeInSandbox";
  ActorKey key{org_id(c), str_or(*box, "providerId"), str_or(*box, "sandboxId")};
  co_return co_await c.call(std::move(type), std::move(key), std::move(action), std::move(args));
}

// A branch rename is a git operation in the sandbox: the remote branch is
// pushed under the new name and the old one deleted in one atomic push,
// the local branch renamed; then both indexes follow (the summary goes up
// task -> repository -> organization).
constexpr const char* kRenameScript =
    "set -e\n"
    "old=\"$1\"; new=\"$2\"\n"
    "cd repo\n"
    "git fetch --quiet origin\n"
    "if git show-ref --verify --quiet \"refs/remotes/origin/$old\"; then\n"
    "  git push --quiet --atomic origin \"refs/remotes/origin/$old:refs/heads/$new\" \":refs/heads/$old\"\n"
    "fi\n"
    "if git show-ref --verify --quiet \"refs/heads/$old\"; then git branch -m \"$old\" \"$new\"; fi\n";

Task<Result<Value>> rename_branch(ActionContext& c, Array args) {
  auto name = string_arg(args, 0, "branch", 200);
  if (!name.ok()) co_return name.error();
  if (auto st = check_branch(*name); !st.ok()) co_return st.error();
  const std::string old = str_or(c.state(), "branch");
  if (old == *name) co_return summary(c);
  auto box = active_sandbox(c);
  if (!box.ok()) co_return box.error();
  {
    std::string type = "repository";
    std::string action = "branchOwner";
    ActorKey key{org_id(c), repo_id(c)};
    Array owner_args{Value(*name)};
    auto owner = co_await c.call(std::move(type), std::move(key), std::move(action), std::move(owner_args));
    if (!owner.ok()) co_return owner.error();
    if (owner->is_string() && owner->as_string() != task_id(c))
      co_return conflict("Branch `" + *name + "` belongs to task `" + owner->as_string() + "`.");
  }
  std::string type = "sandboxInstance";
  std::string action = "executeInSandbox";
  ActorKey key{org_id(c), str_or(*box, "providerId"), str_or(*box, "sandboxId")};
  Array argv{Value("sh"), Value("-c"), Value(kRenameScript), Value("rename"), Value(old), Value(*name)};
  Array exec_args{obj({{"argv", Value(std::move(argv))}, {"timeoutMs", Value(120'000)}})};
  auto ran = co_await c.call(std::move(type), std::move(key), std::move(action), std::move(exec_args));
  if (!ran.ok()) co_return ran.error();
  if (int_or(*ran, "exitCode", -1) != 0)
    co_return make_error("workbench", "git_failed", "The branch rename failed in the sandbox: " + str_or(*ran, "stderr"),
                         obj({{"exitCode", Value(int_or(*ran, "exitCode", -1))}, {"stderr", Value(str_or(*ran, "stderr"))}}));
  if (str_or(c.state(), "branch") != old) co_return conflict("The branch was renamed concurrently.");
  c.mutate_state()["branch"] = *name;
  deliver_inline(c, true);
  auto st = changed(c);
  deliver_inline(c, false);
  if (!st.ok()) co_return st.error();
  Value out = summary(c);
  (void)co_await drain_outbox(c);  // both indexes follow before the rename answers
  co_return out;
}

// ---- reads

Result<Value> get_snapshot(ActionContext& c, const Array&) {
  auto s = sessions(c);
  if (!s.ok()) return s.error();
  auto b = sandboxes(c);
  if (!b.ok()) return b.error();
  const Value& st = c.state();
  return obj({{"seq", Value(current_seq(c))},
              {"taskId", Value(task_id(c))},
              {"repoId", Value(repo_id(c))},
              {"title", *st.find("title")},
              {"status", *st.find("status")},
              {"branch", *st.find("branch")},
              {"pr", *st.find("pr")},
              {"activeSessionId", *st.find("activeSessionId")},
              {"activeSandbox", *st.find("activeSandbox")},
              {"sessions", Value(std::move(*s))},
              {"sandboxes", Value(std::move(*b))}});
}

Result<Value> list_sessions(ActionContext& c, const Array&) {
  auto s = sessions(c);
  if (!s.ok()) return s.error();
  return Value(std::move(*s));
}

Result<Value> list_sandboxes(ActionContext& c, const Array&) {
  auto b = sandboxes(c);
  if (!b.ok()) return b.error();
  return Value(std::move(*b));
}

}  // namespace

ActorDefinition task_actor() {
  ActorDefinition def("task");
  def.initial_state(obj({{"seq", 0},
                         {"version", 0},
                         {"title", ""},
                         {"status", "open"},
                         {"branch", ""},
                         {"repoName", ""},
                         {"pr", Value()},
                         {"activeSessionId", Value()},
                         {"activeSandbox", Value()},
                         {"sessionCount", 0},
                         {"sandboxCount", 0}}))
      .database(database(kMigrations))
      .created_only_by({"repository"}, child_refusal("task", "repository"))
      .action("_init", init)
      .async_action("_destroy", destroy)
      .action("getSnapshot", get_snapshot)
      .async_action("setStatus", delivered(set_status))
      .async_action("setTitle", delivered(set_title))
      .async_action("startSession", start_session)
      .action("listSessions", list_sessions)
      .async_action("provisionSandbox", provision_sandbox)
      .action("listSandboxes", list_sandboxes)
      .async_action("executeInSandbox", execute_in_sandbox)
      .async_action("renameBranch", rename_branch)
      .action("_sessionChanged", pushes(session_changed))
      .async_action("_pullRequestChanged", delivered(pushes(pull_request_changed)));
  with_outbox(def);
  guard_internal(def);
  return def;
}

}  // namespace anvil::workbench
