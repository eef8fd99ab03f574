// organization [orgId]: the root coordinator (docs/workbench.md). Creates
// its repositories, its history feed, its GitHub cache and its users'
// actors; keeps the index tables the sidebar and sign-in read, fed only by
// pushes from its direct children.
#include "actors/workbench/workbench.hpp"

#include "actors/workbench/common.hpp"
#include "base/value/json.hpp"

namespace anvil::workbench {
namespace {

const std::vector<std::string> kMigrations = {
    std::string(kOutboxTable) + ";" +
        // Coordinator index of RepositoryActor instances (the repo catalog).
        "CREATE TABLE repos (repo_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);"
        // Coordinator index of TaskActor instances: taskId -> repoId routing.
        "CREATE TABLE task_lookup (task_id TEXT PRIMARY KEY, repo_id TEXT NOT NULL);"
        // Coordinator index of TaskActor instances: the materialized sidebar
        // projection, pushed up task -> repository -> organization.
        "CREATE TABLE task_summaries (task_id TEXT PRIMARY KEY, repo_id TEXT NOT NULL, title TEXT NOT NULL, "
        "status TEXT NOT NULL, branch TEXT NOT NULL, pr_number INTEGER, pr_state TEXT, version INTEGER NOT NULL, "
        "updated_at INTEGER NOT NULL);"
        "CREATE INDEX task_summaries_by_update ON task_summaries (updated_at DESC, task_id);"
        // Coordinator indexes of AuthUserActor instances.
        "CREATE TABLE auth_session_index (token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
        "expires_at INTEGER NOT NULL);"
        "CREATE TABLE auth_email_index (email TEXT PRIMARY KEY, user_id TEXT NOT NULL);"
        "CREATE TABLE auth_account_index (provider TEXT NOT NULL, account_id TEXT NOT NULL, user_id TEXT NOT NULL, "
        "PRIMARY KEY (provider, account_id));",
};

const std::string& org_id(const ActorContext& c) { return c.key().at(0); }

Value summary_of(const Value& row) {
  Value pr;
  if (const Value* n = row.find("pr_number"); n && n->is_int())
    pr = obj({{"number", *n}, {"state", *row.find("pr_state")}});
  return obj({{"taskId", *row.find("task_id")},
              {"repoId", *row.find("repo_id")},
              {"title", *row.find("title")},
              {"status", *row.find("status")},
              {"branch", *row.find("branch")},
              {"pr", pr}});
}

Result<Array> query_summaries(ActorContext& c, bool with_pr) {
  auto rows = c.db().query(
      "SELECT task_id, repo_id, title, status, branch, pr_number, pr_state FROM task_summaries "
      "ORDER BY updated_at DESC, task_id");
  if (!rows.ok()) return rows.error();
  Array out;
  out.reserve(rows->size());
  for (const auto& r : *rows) {
    if (with_pr) {
      out.push_back(summary_of(r));
    } else {
      out.push_back(obj({{"taskId", *r.find("task_id")},
                         {"repoId", *r.find("repo_id")},
                         {"title", *r.find("title")},
                         {"status", *r.find("status")},
                         {"branch", *r.find("branch")}}));
    }
  }
  return out;
}

Result<Array> query_repos(ActorContext& c) {
  auto rows = c.db().query("SELECT repo_id, name, created_at FROM repos ORDER BY repo_id");
  if (!rows.ok()) return rows.error();
  Array out;
  for (const auto& r : *rows)
    out.push_back(obj({{"repoId", *r.find("repo_id")}, {"name", *r.find("name")}, {"createdAt", *r.find("created_at")}}));
  return out;
}

// One audit entry on the organization's feed (history is created here, on
// the first entry).
Status record(ActorContext& c, std::string kind, Value data) {
  const int64_t source_id = int_or(c.state(), "historyCount", 0) + 1;  // history records each number once
  c.mutate_state()["historyCount"] = source_id;
  Object entry{{"sourceId", Value(source_id)},
               {"kind", Value(std::move(kind))},
               {"at", Value(now_unix_ms())},
               {"data", std::move(data)}};
  return outbox_call(c, "history", {org_id(c)}, "_append", Value(std::move(entry)));
}

// ---- repositories

Task<Result<Value>> add_repository(ActionContext& c, Array args) {
  auto o = object_arg(args);
  if (!o.ok()) co_return o.error();
  auto repo_id = string_field(*o, "repoId", 128);
  if (!repo_id.ok()) co_return repo_id.error();
  if (auto st = check_id("repoId", *repo_id); !st.ok()) co_return st.error();
  auto name = string_field(*o, "name", 200);
  if (!name.ok()) co_return name.error();

  auto existing = c.db().query("SELECT name FROM repos WHERE repo_id = ?", {Value(*repo_id)});
  if (!existing.ok()) co_return existing.error();
  if (!existing->empty()) {
    if (str_or((*existing)[0], "name") != *name)
      co_return conflict("Repository `" + *repo_id + "` is already added as `" + str_or((*existing)[0], "name") + "`.");
    co_return obj({{"repoId", Value(*repo_id)}, {"name", Value(*name)}});
  }
  // The coordinator creates its child first; the index row follows once it
  // exists (a crash in between leaves a repository that adding it again
  // indexes, never an index row without its repository).
  std::string type = "repository";
  std::string init = "_init";
  ActorKey key{org_id(c), *repo_id};
  Array init_args{obj({{"name", Value(*name)}})};
  auto made = co_await c.call(std::move(type), std::move(key), std::move(init), std::move(init_args));
  if (!made.ok()) co_return made.error();

  auto again = c.db().query("SELECT name FROM repos WHERE repo_id = ?", {Value(*repo_id)});  // another turn may have won
  if (!again.ok()) co_return again.error();
  if (again->empty()) {
    const int64_t now = now_unix_ms();
    if (auto ins = c.db().exec("INSERT INTO repos (repo_id, name, created_at) VALUES (?, ?, ?)",
                               {Value(*repo_id), Value(*name), Value(now)});
        !ins.ok())
      co_return ins.error();
    Value repo = obj({{"repoId", Value(*repo_id)}, {"name", Value(*name)}, {"createdAt", Value(now)}});
    publish(c, "repositoryAdded", {{"repository", repo}});
    if (auto st = record(c, "repository.added", repo); !st.ok()) co_return st.error();
    // The GitHub cache exists from the first repository on (webhooks for
    // this organization reach it), and reads the repository when it can.
    if (auto st = outbox_call(c, "githubData", {org_id(c)}, "_touch", Value(true)); !st.ok()) co_return st.error();
    // A cache refresh, not a change: sent once, not through the outbox (a
    // GitHub outage must not hold up the history entries queued behind it).
    if (c.config("GITHUB_API_URL") && name->find('/') != std::string::npos)
      c.call_actor("githubData", {org_id(c)}, "syncRepository", {Value(*name)});
  }
  co_return obj({{"repoId", Value(*repo_id)}, {"name", Value(*name)}});
}

// ---- pushes from the children

// repository [orgId, repoId] -> a task's summary changed (version-ordered).
Result<bool> task_summary_changed(ActionContext& c, const Value& item) {
  const Value* s = &item;
  const std::string repo_id = str_or(*s, "repoId");
  if (auto st = require_caller(c, "repository", {org_id(c), repo_id}); !st.ok()) return st.error();
  const std::string task_id = str_or(*s, "taskId");
  const int64_t version = int_or(*s, "version", 0);
  auto cur = c.db().query("SELECT version FROM task_summaries WHERE task_id = ?", {Value(task_id)});
  if (!cur.ok()) return cur.error();
  if (!cur->empty() && int_or((*cur)[0], "version", 0) >= version) return false;  // stale or repeated

  const Value* pr = s->find("pr");
  Value pr_number, pr_state;
  if (pr && pr->is_object()) {
    pr_number = pr->find("number") ? *pr->find("number") : Value();
    pr_state = pr->find("state") ? *pr->find("state") : Value();
  }
  auto up = c.db().exec(
      "INSERT INTO task_summaries (task_id, repo_id, title, status, branch, pr_number, pr_state, version, updated_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET repo_id = excluded.repo_id, "
      "title = excluded.title, status = excluded.status, branch = excluded.branch, pr_number = excluded.pr_number, "
      "pr_state = excluded.pr_state, version = excluded.version, updated_at = excluded.updated_at",
      {Value(task_id), Value(repo_id), Value(str_or(*s, "title")), Value(str_or(*s, "status")),
       Value(str_or(*s, "branch")), pr_number, pr_state, Value(version), Value(now_unix_ms())});
  if (!up.ok()) return up.error();
  auto look = c.db().exec("INSERT OR REPLACE INTO task_lookup (task_id, repo_id) VALUES (?, ?)",
                          {Value(task_id), Value(repo_id)});
  if (!look.ok()) return look.error();
  auto row = c.db().query(
      "SELECT task_id, repo_id, title, status, branch, pr_number, pr_state FROM task_summaries WHERE task_id = ?",
      {Value(task_id)});
  if (!row.ok()) return row.error();
  Value summary = summary_of((*row)[0]);
  publish(c, "taskSummaryUpdated", {{"summary", summary}});
  if (auto st = record(c, cur->empty() ? "task.created" : "task.updated", summary); !st.ok()) return st.error();
  return true;
}

Result<bool> task_removed(ActionContext& c, const Value& item) {
  const Value* s = &item;
  const std::string repo_id = str_or(*s, "repoId");
  if (auto st = require_caller(c, "repository", {org_id(c), repo_id}); !st.ok()) return st.error();
  const std::string task_id = str_or(*s, "taskId");
  auto del = c.db().exec("DELETE FROM task_summaries WHERE task_id = ?", {Value(task_id)});
  if (!del.ok()) return del.error();
  if (auto d = c.db().exec("DELETE FROM task_lookup WHERE task_id = ?", {Value(task_id)}); !d.ok()) return d.error();
  if (del->changes == 0) return false;
  publish(c, "taskSummaryRemoved", {{"taskId", Value(task_id)}, {"repoId", Value(repo_id)}});
  if (auto st = record(c, "task.removed", obj({{"taskId", Value(task_id)}, {"repoId", Value(repo_id)}})); !st.ok())
    return st.error();
  return true;
}

// githubData [orgId] -> something changed on GitHub. Pull requests are
// routed down to the repository whose task owns the branch.
Result<bool> github_event(ActionContext& c, const Value& item) {
  if (auto st = require_caller(c, "githubData", {org_id(c)}); !st.ok()) return st.error();
  const Value* e = &item;
  if (str_or(*e, "kind") != "pull_request") return false;
  auto repo = c.db().query("SELECT repo_id FROM repos WHERE name = ?", {Value(str_or(*e, "repository"))});
  if (!repo.ok()) return repo.error();
  if (repo->empty()) return false;  // not a repository of this organization
  const std::string repo_id = str_or((*repo)[0], "repo_id");
  if (auto st = outbox_call(c, "repository", {org_id(c), repo_id}, "_pullRequestChanged", *e); !st.ok())
    return st.error();
  return true;
}

// ---- auth indexes

Status check_service_token(const ActorContext& c, const Value& o) {
  auto expected = c.config("WORKBENCH_SERVICE_TOKEN");
  if (!expected || expected->empty()) return Ok{};  // development: sign-in is open
  const std::string given = str_or(o, "serviceToken");
  // Compare hashes: equal length, and no early exit on the first difference.
  const std::string a = sha256_hex(given), b = sha256_hex(*expected);
  unsigned diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned>(a[i] ^ b[i]);
  if (diff != 0) return make_error("auth", "unauthorized", "signIn needs the workbench's service token.");
  return Ok{};
}

// signIn({userId, sessionToken, expiresAt?, email?, provider?, accountId?, serviceToken?})
// — what the sign-in flow calls after it verified the user: creates the
// user's actor on first sign-in, hands it the session and indexes it.
Task<Result<Value>> sign_in(ActionContext& c, Array args) {
  auto o = object_arg(args);
  if (!o.ok()) co_return o.error();
  if (auto st = check_service_token(c, *o); !st.ok()) co_return st.error();
  auto user_id = string_field(*o, "userId", 128);
  if (!user_id.ok()) co_return user_id.error();
  if (auto st = check_id("userId", *user_id); !st.ok()) co_return st.error();
  auto token = string_field(*o, "sessionToken", 1024);
  if (!token.ok()) co_return token.error();
  if (token->size() < 16) co_return invalid_argument("`sessionToken` must be at least 16 bytes.");
  const int64_t expires_at = int_or(*o, "expiresAt", now_unix_ms() + 24LL * 3600 * 1000);
  auto email = string_field(*o, "email", 320, std::string());
  if (!email.ok()) co_return email.error();
  auto provider = string_field(*o, "provider", 64, std::string());
  if (!provider.ok()) co_return provider.error();
  auto account = string_field(*o, "accountId", 256, std::string());
  if (!account.ok()) co_return account.error();

  const std::string hash = sha256_hex(*token);
  std::string type = "authUser";
  std::string action = "_addSession";
  ActorKey key{org_id(c), *user_id};
  Array call_args{obj({{"tokenHash", Value(hash)}, {"expiresAt", Value(expires_at)}, {"email", Value(*email)}})};
  auto made = co_await c.call(std::move(type), std::move(key), std::move(action), std::move(call_args));
  if (!made.ok()) co_return made.error();

  auto s = c.db().exec("INSERT OR REPLACE INTO auth_session_index (token_hash, user_id, expires_at) VALUES (?, ?, ?)",
                       {Value(hash), Value(*user_id), Value(expires_at)});
  if (!s.ok()) co_return s.error();
  if (!email->empty()) {
    auto e = c.db().exec("INSERT OR REPLACE INTO auth_email_index (email, user_id) VALUES (lower(?), ?)",
                         {Value(*email), Value(*user_id)});
    if (!e.ok()) co_return e.error();
  }
  if (!provider->empty() && !account->empty()) {
    auto a = c.db().exec("INSERT OR REPLACE INTO auth_account_index (provider, account_id, user_id) VALUES (?, ?, ?)",
                         {Value(*provider), Value(*account), Value(*user_id)});
    if (!a.ok()) co_return a.error();
  }
  if (auto st = record(c, "user.signed_in", obj({{"userId", Value(*user_id)}})); !st.ok()) co_return st.error();
  co_return obj({{"userId", Value(*user_id)}, {"expiresAt", Value(expires_at)}});
}

Task<Result<Value>> sign_out(ActionContext& c, Array args) {
  auto token = string_arg(args, 0, "sessionToken", 1024);
  if (!token.ok()) co_return token.error();
  const std::string hash = sha256_hex(*token);
  auto row = c.db().query("SELECT user_id FROM auth_session_index WHERE token_hash = ?", {Value(hash)});
  if (!row.ok()) co_return row.error();
  if (row->empty()) co_return Value(false);
  const std::string user_id = str_or((*row)[0], "user_id");
  if (auto d = c.db().exec("DELETE FROM auth_session_index WHERE token_hash = ?", {Value(hash)}); !d.ok())
    co_return d.error();
  if (auto st = outbox_call(c, "authUser", {org_id(c), user_id}, "_removeSession", obj({{"tokenHash", Value(hash)}}));
      !st.ok())
    co_return st.error();
  co_return Value(true);
}

Result<Value> resolve_session(ActionContext& c, const Array& args) {
  auto token = string_arg(args, 0, "sessionToken", 1024);
  if (!token.ok()) return token.error();
  auto row = c.db().query("SELECT user_id, expires_at FROM auth_session_index WHERE token_hash = ?",
                          {Value(sha256_hex(*token))});
  if (!row.ok()) return row.error();
  if (row->empty() || int_or((*row)[0], "expires_at", 0) <= now_unix_ms())
    return make_error("auth", "unauthorized", "Unknown or expired session token.");
  return obj({{"userId", *(*row)[0].find("user_id")}, {"expiresAt", *(*row)[0].find("expires_at")}});
}

Result<Value> find_user(ActionContext& c, const Array& args) {
  auto o = object_arg(args);
  if (!o.ok()) return o.error();
  Result<Array> rows = Array{};
  if (auto email = str_or(*o, "email"); !email.empty()) {
    rows = c.db().query("SELECT user_id FROM auth_email_index WHERE email = lower(?)", {Value(email)});
  } else if (auto provider = str_or(*o, "provider"); !provider.empty()) {
    rows = c.db().query("SELECT user_id FROM auth_account_index WHERE provider = ? AND account_id = ?",
                        {Value(provider), Value(str_or(*o, "accountId"))});
  } else {
    return invalid_argument("findUser needs `email` or `provider` + `accountId`.");
  }
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return not_found("No such user.");
  return obj({{"userId", *(*rows)[0].find("user_id")}});
}

// ---- reads (local tables only: no read calls another actor)

Result<Value> list_task_summaries(ActionContext& c, const Array&) {
  auto rows = query_summaries(c, false);
  if (!rows.ok()) return rows.error();
  return Value(std::move(*rows));
}

Result<Value> list_repositories(ActionContext& c, const Array&) {
  auto rows = query_repos(c);
  if (!rows.ok()) return rows.error();
  return Value(std::move(*rows));
}

Result<Value> lookup_task(ActionContext& c, const Array& args) {
  auto task_id = string_arg(args, 0, "taskId", 128);
  if (!task_id.ok()) return task_id.error();
  auto row = c.db().query("SELECT repo_id FROM task_lookup WHERE task_id = ?", {Value(*task_id)});
  if (!row.ok()) return row.error();
  if (row->empty()) return not_found("No task `" + *task_id + "` in this organization.");
  return obj({{"taskId", Value(*task_id)}, {"repoId", *(*row)[0].find("repo_id")}});
}

Result<Value> get_snapshot(ActionContext& c, const Array&) {
  auto repos = query_repos(c);
  if (!repos.ok()) return repos.error();
  auto tasks = query_summaries(c, true);
  if (!tasks.ok()) return tasks.error();
  return obj({{"seq", Value(current_seq(c))},
              {"orgId", Value(org_id(c))},
              {"repositories", Value(std::move(*repos))},
              {"tasks", Value(std::move(*tasks))}});
}

}  // namespace

ActorDefinition organization_actor() {
  ActorDefinition def("organization");
  def.initial_state(obj({{"seq", 0}, {"historyCount", 0}}))
      .database(database(kMigrations))
      .async_action("addRepository", add_repository)
      .action("listRepositories", list_repositories)
      .action("listTaskSummaries", list_task_summaries)
      .action("lookupTask", lookup_task)
      .action("getSnapshot", get_snapshot)
      .async_action("signIn", sign_in)
      .async_action("signOut", sign_out)
      .action("resolveSession", resolve_session)
      .action("findUser", find_user)
      .async_action("_taskSummaryChanged", delivered(pushes(task_summary_changed)))
      .async_action("_taskRemoved", delivered(pushes(task_removed)))
      .async_action("_githubEvent", delivered(pushes(github_event)));
  with_outbox(def);
  guard_internal(def);
  return def;
}

}  // namespace anvil::workbench
