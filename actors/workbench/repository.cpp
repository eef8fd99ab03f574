// repository [orgId, repoId]: the coordinator of its tasks. Creates and
// destroys them, keeps the task index (taskId -> branch) and relays each
// task's summary up to the organization.
#include "actors/workbench/common.hpp"
#include "actors/workbench/workbench.hpp"

namespace anvil::workbench {
namespace {

const std::vector<std::string> kMigrations = {
    std::string(kOutboxTable) + ";" +
        // Coordinator index of TaskActor instances: taskId -> branchName.
        "CREATE TABLE task_index (task_id TEXT PRIMARY KEY, branch TEXT NOT NULL UNIQUE, title TEXT NOT NULL, "
        "status TEXT NOT NULL, pr_number INTEGER, pr_state TEXT, version INTEGER NOT NULL, "
        "updated_at INTEGER NOT NULL);",
};

const std::string& org_id(const ActorContext& c) { return c.key().at(0); }
const std::string& repo_id(const ActorContext& c) { return c.key().at(1); }

Value task_row(const Value& r) {
  Value pr;
  if (const Value* n = r.find("pr_number"); n && n->is_int()) pr = obj({{"number", *n}, {"state", *r.find("pr_state")}});
  return obj({{"taskId", *r.find("task_id")},
              {"branch", *r.find("branch")},
              {"title", *r.find("title")},
              {"status", *r.find("status")},
              {"pr", pr}});
}

Result<std::optional<Value>> find_task(ActorContext& c, const std::string& task_id) {
  auto rows = c.db().query("SELECT task_id, branch, title, status, pr_number, pr_state FROM task_index WHERE task_id = ?",
                           {Value(task_id)});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return std::optional<Value>();
  return std::optional<Value>(task_row((*rows)[0]));
}

// Applies a task's summary (newer versions only), tells subscribers and
// relays it to the organization. false when it was stale.
Result<bool> apply_summary(ActorContext& c, const Value& s) {
  const std::string task_id = str_or(s, "taskId");
  const int64_t version = int_or(s, "version", 0);
  auto cur = c.db().query("SELECT version FROM task_index WHERE task_id = ?", {Value(task_id)});
  if (!cur.ok()) return cur.error();
  if (!cur->empty() && int_or((*cur)[0], "version", 0) >= version) return false;
  Value pr_number, pr_state;
  if (const Value* pr = s.find("pr"); pr && pr->is_object()) {
    if (const Value* n = pr->find("number")) pr_number = *n;
    if (const Value* st = pr->find("state")) pr_state = *st;
  }
  auto up = c.db().exec(
      "INSERT INTO task_index (task_id, branch, title, status, pr_number, pr_state, version, updated_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET branch = excluded.branch, "
      "title = excluded.title, status = excluded.status, pr_number = excluded.pr_number, "
      "pr_state = excluded.pr_state, version = excluded.version, updated_at = excluded.updated_at",
      {Value(task_id), Value(str_or(s, "branch")), Value(str_or(s, "title")), Value(str_or(s, "status")), pr_number,
       pr_state, Value(version), Value(now_unix_ms())});
  if (!up.ok()) return up.error();
  auto row = find_task(c, task_id);
  if (!row.ok()) return row.error();
  publish(c, "taskIndexUpdated", {{"task", **row}});
  Value up_summary = s;
  up_summary["repoId"] = repo_id(c);
  if (auto st = outbox_call(c, "organization", {org_id(c)}, "_taskSummaryChanged", std::move(up_summary)); !st.ok())
    return st.error();
  return true;
}

// Creates (or finds) the task and indexes the summary it answers.
Task<Result<Value>> init_task(ActionContext& c, std::string task_id, std::string title, std::string branch) {
  std::string type = "task";
  std::string action = "_init";
  ActorKey key{org_id(c), repo_id(c), task_id};
  Array init_args{obj({{"title", Value(std::move(title))}, {"branch", Value(std::move(branch))},
                       {"repoName", Value(str_or(c.state(), "name"))}})};
  auto summary = co_await c.call(std::move(type), std::move(key), std::move(action), std::move(init_args));
  if (!summary.ok()) co_return summary.error();
  deliver_inline(c, true);
  auto applied = apply_summary(c, *summary);
  deliver_inline(c, false);
  if (!applied.ok()) co_return applied.error();
  (void)co_await drain_outbox(c);  // the organization has it before createTask answers
  co_return std::move(*summary);
}

Result<Value> init(ActionContext& c, const Array& args) {
  if (auto st = require_caller(c, "organization", {org_id(c)}); !st.ok()) return st.error();
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  if (str_or(c.state(), "name").empty()) c.mutate_state()["name"] = str_or(*o, "name");
  return obj({{"repoId", Value(repo_id(c))}, {"name", Value(str_or(c.state(), "name"))}});
}

// createTask({taskId, title}) -> {taskId, branch}: creates the task (one
// task = one branch, named task/<taskId> until renamed) and indexes it.
Task<Result<Value>> create_task(ActionContext& c, Array args) {
  auto o = object_arg(args);
  if (!o.ok()) co_return o.error();
  auto task_id = string_field(*o, "taskId", 128);
  if (!task_id.ok()) co_return task_id.error();
  if (auto st = check_id("taskId", *task_id); !st.ok()) co_return st.error();
  auto title = string_field(*o, "title", 500);
  if (!title.ok()) co_return title.error();
  auto existing = c.db().query("SELECT branch, title, version FROM task_index WHERE task_id = ?", {Value(*task_id)});
  if (!existing.ok()) co_return existing.error();
  if (!existing->empty()) {
    const Value row = (*existing)[0];
    if (int_or(row, "version", 0) == 0) {  // a create a crash cut: finish it
      auto summary = co_await init_task(c, *task_id, str_or(row, "title"), str_or(row, "branch"));
      if (!summary.ok()) co_return summary.error();
    }
    co_return obj({{"taskId", Value(*task_id)}, {"branch", *row.find("branch")}});
  }

  std::string branch = "task/" + *task_id;
  auto taken = c.db().query("SELECT task_id FROM task_index WHERE branch = ?", {Value(branch)});
  if (!taken.ok()) co_return taken.error();
  if (!taken->empty()) branch += "-" + std::to_string(now_unix_ms());  // a renamed task took the name

  // The index row first, as version 0 ("creating"): it commits before the
  // task is created, so a crash in between leaves a row that
  // _completeCreates finishes (the task's _init is idempotent), never a
  // task its coordinator does not know.
  auto pending = c.db().exec(
      "INSERT INTO task_index (task_id, branch, title, status, version, updated_at) VALUES (?, ?, ?, 'creating', 0, ?)",
      {Value(*task_id), Value(branch), Value(*title), Value(now_unix_ms())});
  if (!pending.ok()) co_return pending.error();
  if (auto st = c.schedule_every("completeCreates", 10'000, "_completeCreates", {}); !st.ok()) co_return st.error();
  auto summary = co_await init_task(c, *task_id, *title, branch);
  if (!summary.ok()) co_return summary.error();
  co_return obj({{"taskId", Value(*task_id)}, {"branch", Value(str_or(*summary, "branch"))}});
}

// Finishes creates a crash cut between the index row and the task.
Task<Result<Value>> complete_creates(ActionContext& c, Array) {
  auto rows = c.db().query("SELECT task_id, title, branch FROM task_index WHERE version = 0 ORDER BY task_id");
  if (!rows.ok()) co_return rows.error();
  int64_t done = 0;
  for (const auto& r : *rows) {
    auto summary = co_await init_task(c, str_or(r, "task_id"), str_or(r, "title"), str_or(r, "branch"));
    if (!summary.ok()) co_return summary.error();
    ++done;
  }
  auto left = c.db().query("SELECT COUNT(*) AS n FROM task_index WHERE version = 0");
  if (left.ok() && int_or((*left)[0], "n", 0) == 0) (void)c.cancel_schedule("every:completeCreates");
  co_return Value(done);
}

// task [orgId, repoId, taskId] -> its summary changed.
Result<bool> task_changed(ActionContext& c, const Value& item) {
  const Value* s = &item;
  const std::string task_id = str_or(*s, "taskId");
  if (auto st = require_caller(c, "task", {org_id(c), repo_id(c), task_id}); !st.ok()) return st.error();
  return apply_summary(c, *s);
}

// Who holds `branch` in this repository (a task's rename checks first).
Result<Value> branch_owner(ActionContext& c, const Array& args) {
  auto branch = string_arg(args, 0, "branch", 200);
  if (!branch.ok()) return branch.error();
  auto rows = c.db().query("SELECT task_id FROM task_index WHERE branch = ?", {Value(*branch)});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return Value();
  return *(*rows)[0].find("task_id");
}

Task<Result<Value>> destroy_task(ActionContext& c, Array args) {
  auto task_id = string_arg(args, 0, "taskId", 128);
  if (!task_id.ok()) co_return task_id.error();
  auto existing = find_task(c, *task_id);
  if (!existing.ok()) co_return existing.error();
  if (!*existing) co_return not_found("No task `" + *task_id + "` in this repository.");
  std::string type = "task";
  std::string action = "_destroy";
  ActorKey key{org_id(c), repo_id(c), *task_id};
  auto done = co_await c.call(std::move(type), std::move(key), std::move(action), Array{});
  if (!done.ok()) co_return done.error();
  auto del = c.db().exec("DELETE FROM task_index WHERE task_id = ?", {Value(*task_id)});
  if (!del.ok()) co_return del.error();
  if (del->changes > 0) {
    publish(c, "taskIndexRemoved", {{"taskId", Value(*task_id)}});
    deliver_inline(c, true);
    auto st = outbox_call(c, "organization", {org_id(c)}, "_taskRemoved",
                          obj({{"taskId", Value(*task_id)}, {"repoId", Value(repo_id(c))}}));
    deliver_inline(c, false);
    if (!st.ok()) co_return st.error();
    (void)co_await drain_outbox(c);
  }
  co_return Value(true);
}

// organization -> a pull request changed on GitHub: routed to the task
// whose branch it is (the task pushes its new summary back up).
Result<bool> pull_request_changed(ActionContext& c, const Value& item) {
  if (auto st = require_caller(c, "organization", {org_id(c)}); !st.ok()) return st.error();
  const Value* e = &item;
  auto rows = c.db().query("SELECT task_id FROM task_index WHERE branch = ?", {Value(str_or(*e, "branch"))});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return false;
  const std::string task_id = str_or((*rows)[0], "task_id");
  if (auto st = outbox_call(c, "task", {org_id(c), repo_id(c), task_id}, "_pullRequestChanged", *e); !st.ok())
    return st.error();
  return true;
}

Result<Array> all_tasks(ActorContext& c) {
  auto rows = c.db().query("SELECT task_id, branch, title, status, pr_number, pr_state FROM task_index ORDER BY task_id");
  if (!rows.ok()) return rows.error();
  Array out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(task_row(r));
  return out;
}

Result<Value> list_tasks(ActionContext& c, const Array&) {
  auto t = all_tasks(c);
  if (!t.ok()) return t.error();
  return Value(std::move(*t));
}

Result<Value> get_snapshot(ActionContext& c, const Array&) {
  auto t = all_tasks(c);
  if (!t.ok()) return t.error();
  return obj({{"seq", Value(current_seq(c))},
              {"repoId", Value(repo_id(c))},
              {"name", Value(str_or(c.state(), "name"))},
              {"tasks", Value(std::move(*t))}});
}

}  // namespace

ActorDefinition repository_actor() {
  ActorDefinition def("repository");
  def.initial_state(obj({{"seq", 0}, {"name", ""}}))
      .database(database(kMigrations))
      .created_only_by({"organization"}, child_refusal("repository", "organization"))
      .action("_init", init)
      .async_action("createTask", create_task)
      .async_action("_completeCreates", complete_creates)
      .async_action("destroyTask", destroy_task)
      .action("listTasks", list_tasks)
      .action("getSnapshot", get_snapshot)
      .action("branchOwner", branch_owner)
      .async_action("_taskChanged", delivered(pushes(task_changed)))
      .async_action("_pullRequestChanged", delivered(pushes(pull_request_changed)));
  with_outbox(def);
  guard_internal(def);
  return def;
}

}  // namespace anvil::workbench
