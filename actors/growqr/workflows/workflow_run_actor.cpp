#include "actors/growqr/workflows/workflow_run_actor.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "actors/growqr/missions/app_util.hpp"
#include "base/net/retry.hpp"
#include "base/value/json.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

constexpr int64_t kDefaultMaxRetries = 3;
constexpr int64_t kDefaultTimeoutMs = 30'000;

// Postgres writes of the run loop: retried for a while (the outcome they
// record is already in the workflow history, so nothing is lost meanwhile).
StepOptions db_step_options() {
  StepOptions o;
  o.max_attempts = 12;
  o.backoff = std::chrono::milliseconds(100);
  o.timeout = std::chrono::seconds(40);
  return o;
}

Value* find_module(Value& state, const std::string& id) {
  Value* mods = state.find("modules");
  if (!mods || !mods->is_array()) return nullptr;
  for (auto& m : mods->as_array())
    if (str_or(m, "moduleId") == id) return &m;
  return nullptr;
}

bool valid_service(const std::string& s) {
  if (s.empty() || s.size() > 40) return false;
  for (char ch : s)
    if (!(std::islower(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')) return false;
  return true;
}

// The module list of a definition, checked and with defaults filled in.
Result<Value> normalize_modules(const Value& modules) {
  if (!modules.is_array() || modules.as_array().empty())
    return make_error("validation", "invalid_modules", "A workflow run needs a non-empty modules list.");
  Array out;
  for (const auto& m : modules.as_array()) {
    std::string id = m.is_string() ? m.as_string() : str_or(m, "id", str_or(m, "moduleId"));
    if (id.empty() || id.size() > 100)
      return make_error("validation", "invalid_modules", "Every module needs an id (at most 100 bytes).");
    for (const auto& o : out)
      if (str_or(o, "moduleId") == id)
        return make_error("validation", "invalid_modules", "Module id `" + id + "` appears twice.");
    const std::string service = str_or(m, "service");
    if (!valid_service(service))
      return make_error("validation", "invalid_modules",
                        "Module `" + id + "` needs a service name (lowercase letters, '-' or '_'), e.g. \"interview\".");
    const std::string path = str_or(m, "path", "/modules/" + id + "/run");
    if (path.empty() || path[0] != '/')
      return make_error("validation", "invalid_modules", "Module `" + id + "`'s path must start with '/'.");
    const int64_t max_retries = int_or(m, "maxRetries", kDefaultMaxRetries);
    if (max_retries < 1 || max_retries > 10)
      return make_error("validation", "invalid_modules", "Module `" + id + "`'s maxRetries must be 1..10.");
    const int64_t timeout = int_or(m, "timeoutMs", kDefaultTimeoutMs);
    if (timeout < 100 || timeout > 120'000)
      return make_error("validation", "invalid_modules", "Module `" + id + "`'s timeoutMs must be 100..120000.");
    out.push_back(obj({{"moduleId", id},
                       {"position", static_cast<int64_t>(out.size())},
                       {"service", service},
                       {"path", path},
                       {"maxRetries", max_retries},
                       {"timeoutMs", timeout},
                       {"input", field_or_null(m, "input")},
                       {"status", "pending"},
                       {"commandId", Value()},
                       {"retryCount", 0},
                       {"lastError", Value()}}));
  }
  return Value(std::move(out));
}

// ------------------------------------------------------------------ create

Result<Value> create_in_tx(pg::Tx& tx, const Value& spec) {
  const std::string run_id = str_or(spec, "runId");
  const std::string user = str_or(spec, "userId");
  if (auto u = tx.exec("INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING", {user}); !u.ok())
    return u.error();
  std::string definition = str_or(spec, "definitionId");
  Value modules = field_or_null(spec, "modules");
  if (!modules.is_null()) {
    if (definition.empty()) definition = "inline-" + run_id;
    auto d = tx.exec(
        "INSERT INTO workflow_definitions (id, name, modules) VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING",
        {definition, definition, json::dump(modules)});
    if (!d.ok()) return d.error();
  } else {
    auto d = tx.exec("SELECT modules FROM workflow_definitions WHERE id = $1", {definition});
    if (!d.ok()) return d.error();
    if (d->rows.empty())
      return make_error("workflow", "definition_not_found", "No workflow definition `" + definition + "`.",
                        obj({{"definitionId", definition}}));
    modules = field_or_null(d->rows[0], "modules");
  }
  auto normalized = normalize_modules(modules);
  if (!normalized.ok()) return normalized.error();
  const Value& mission = field_or_null(spec, "missionInstanceId");
  auto r = tx.exec(
      "INSERT INTO workflow_runs (id, definition_id, user_id, mission_instance_id, idempotency_key, input) "
      "VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING",
      {run_id, definition, user, mission.is_string() ? mission : Value(), user + ":" + str_or(spec, "idempotencyKey"),
       json::dump(field_or_null(spec, "input").is_null() ? Value(Object{}) : field_or_null(spec, "input"))});
  if (!r.ok()) return r.error();
  const bool inserted = r->affected > 0;
  for (const auto& m : normalized->as_array()) {
    auto mr = tx.exec(
        "INSERT INTO workflow_run_modules (run_id, module_id, position, max_retries) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (run_id, module_id) DO NOTHING",
        {run_id, str_or(m, "moduleId"), int_or(m, "position", 0), int_or(m, "maxRetries", kDefaultMaxRetries)});
    if (!mr.ok()) return mr.error();
  }
  if (inserted) {
    auto e = tx.exec("INSERT INTO workflow_events (run_id, type, payload) VALUES ($1, 'run.created', $2::jsonb)",
                     {run_id, json::dump(obj({{"definitionId", definition}}))});
    if (!e.ok()) return e.error();
  }
  auto st = tx.exec("SELECT status FROM workflow_runs WHERE id = $1", {run_id});
  if (!st.ok()) return st.error();
  if (st->rows.empty()) return make_error("workflow", "run_conflict", "The run id is taken by another key.");
  return obj({{"definitionId", definition},
              {"modules", *normalized},
              {"status", field_or_null(st->rows[0], "status")},
              {"inserted", inserted}});
}

Value status_of(const Value& s) {
  return obj({{"runId", field_or_null(s, "runId")},
              {"userId", field_or_null(s, "userId")},
              {"definitionId", field_or_null(s, "definitionId")},
              {"missionInstanceId", field_or_null(s, "missionInstanceId")},
              {"status", field_or_null(s, "status")},
              {"paused", field_or_null(s, "paused")},
              {"modules", field_or_null(s, "modules")},
              {"commands", field_or_null(s, "commands")}});
}

Task<Result<Value>> create(ActionContext& c, Array args) {
  if (bool_or(c.state(), "created", false)) {
    Value out = status_of(c.state());
    out["existing"] = true;
    co_return out;
  }
  if (args.empty() || !args[0].is_object())
    co_return make_error("validation", "invalid_body", "create expects a run spec object.");
  Value spec = args[0];
  spec["runId"] = c.key().at(0);
  if (str_or(spec, "userId").empty() || str_or(spec, "idempotencyKey").empty())
    co_return make_error("validation", "invalid_body", "A run needs a userId and an idempotency key.");
  if (str_or(spec, "definitionId").empty() && field_or_null(spec, "modules").is_null())
    co_return make_error("validation", "invalid_body", "A run needs a definitionId or a modules list.");
  std::function<Result<Value>(pg::Tx&)> fn = [spec](pg::Tx& tx) { return create_in_tx(tx, spec); };
  auto r = co_await c.sql_transaction(std::move(fn));
  if (!r.ok()) co_return r.error();
  // A concurrent create may have finished while this one waited.
  const bool existing = bool_or(c.state(), "created", false) || !bool_or(*r, "inserted", false);
  if (!bool_or(c.state(), "created", false)) {
    Value& s = c.mutate_state();
    s["created"] = true;
    s["userId"] = str_or(spec, "userId");
    s["definitionId"] = field_or_null(*r, "definitionId");
    s["missionInstanceId"] = field_or_null(spec, "missionInstanceId");
    s["status"] = field_or_null(*r, "status");
    s["modules"] = field_or_null(*r, "modules");
    spdlog::info("workflow run created runId={} userId={} definitionId={}", str_or(s, "runId"), str_or(s, "userId"),
                 str_or(s, "definitionId"));
  }
  Value out = status_of(c.state());
  out["existing"] = existing;
  co_return out;
}

// ------------------------------------------------------------------ the run loop

// The first command of this iteration: a deferred one once the run is no
// longer paused, else null (take the next queue message). Recorded, so a
// replay of the iteration takes the same branch.
Result<Value> pick_deferred(ActorContext& c) {
  if (bool_or(c.state(), "paused", false)) return Value();
  const Value& deferred = field_or_null(c.state(), "deferred");
  if (!deferred.is_array() || deferred.as_array().empty()) return Value();
  Value& list = c.mutate_state()["deferred"];
  Value cmd = list.as_array().front();
  list.as_array().erase(list.as_array().begin());
  cmd["fromDeferred"] = true;
  return cmd;
}

void set_command(Value& s, const std::string& id, Value entry) {
  Value& cmds = s["commands"];
  if (!cmds.is_object()) cmds = Object{};
  cmds[id] = std::move(entry);
}

// Decides what a command does, in one synchronous (recorded) step.
Result<Value> accept(ActorContext& c, const Value& cmd) {
  const std::string id = str_or(cmd, "commandId");
  const std::string kind = str_or(cmd, "kind");
  Value& s = c.mutate_state();
  const Value* known = s.find("commands") ? s["commands"].find(id) : nullptr;
  const bool resumed_deferred = bool_or(cmd, "fromDeferred", false) && known && str_or(*known, "status") == "deferred";
  if (id.empty() || (known && !resumed_deferred)) return obj({{"action", "duplicate"}});
  if (!bool_or(s, "created", false)) {
    set_command(s, id, obj({{"kind", kind}, {"status", "rejected"}, {"reason", "workflow.run_not_found"}}));
    return obj({{"action", "rejected"}});
  }
  if (kind == "pause" || kind == "resume") {
    const bool pause = kind == "pause";
    const std::string status = str_or(s, "status");
    if (bool_or(s, "paused", false) == pause || status == "completed" || status == "failed" || status == "cancelled") {
      set_command(s, id, obj({{"kind", kind}, {"status", "noop"}}));
      return obj({{"action", "noop"}});
    }
    s["paused"] = pause;
    set_command(s, id, obj({{"kind", kind}, {"status", "done"}}));
    return obj({{"action", kind}});
  }
  if (kind != "runModule") {
    set_command(s, id, obj({{"kind", kind}, {"status", "rejected"}, {"reason", "validation.unknown_command"}}));
    return obj({{"action", "rejected"}});
  }
  const std::string module_id = str_or(cmd, "moduleId");
  Value* m = find_module(s, module_id);
  if (!m || (!str_or(*m, "commandId").empty() && str_or(*m, "commandId") != id)) {
    const char* reason = m ? "workflow.module_already_run" : "workflow.module_not_found";
    set_command(s, id, obj({{"kind", kind}, {"moduleId", module_id}, {"status", "rejected"}, {"reason", reason}}));
    return obj({{"action", "rejected"}});
  }
  if (bool_or(s, "paused", false)) {
    Value& deferred = s["deferred"];
    if (!deferred.is_array()) deferred = Array{};
    Value plain = cmd;
    plain["fromDeferred"] = false;
    deferred.as_array().push_back(plain);
    set_command(s, id, obj({{"kind", kind}, {"moduleId", module_id}, {"status", "deferred"}}));
    return obj({{"action", "deferred"}});
  }
  (*m)["commandId"] = id;
  (*m)["status"] = "running";
  set_command(s, id, obj({{"kind", kind}, {"moduleId", module_id}, {"status", "running"}}));
  Value job = *m;
  job["runId"] = field_or_null(s, "runId");
  job["userId"] = field_or_null(s, "userId");
  job["missionInstanceId"] = field_or_null(s, "missionInstanceId");
  job["url"] = str_or(cmd, "url") + str_or(*m, "path");
  job["backoffMs"] = int_or(cmd, "backoffMs", 1000);
  job["requestKey"] = str_or(cmd, "requestKey");
  return obj({{"action", "run"}, {"job", job}});
}

Task<Result<Value>> mark_running(ActorContext& c, Value job) {
  const std::string run = str_or(job, "runId"), module = str_or(job, "moduleId");
  const std::string command = str_or(job, "commandId");
  const std::string scoped_key = run + "/" + module + "/" + str_or(job, "requestKey");
  std::function<Result<Value>(pg::Tx&)> fn = [=](pg::Tx& tx) -> Result<Value> {
    auto u = tx.exec(
        "UPDATE workflow_run_modules SET status = 'running', command_id = $3, idempotency_key = $4, "
        "started_at = COALESCE(started_at, now()), updated_at = now() "
        "WHERE run_id = $1 AND module_id = $2 AND status IN ('pending', 'queued')",
        {run, module, command, scoped_key});
    if (!u.ok()) return u.error();
    if (u->affected > 0) {
      auto e = tx.exec(
          "INSERT INTO workflow_events (run_id, module_id, type, payload) VALUES ($1, $2, 'module.started', $3::jsonb)",
          {run, module, json::dump(obj({{"commandId", command}}))});
      if (!e.ok()) return e.error();
    }
    auto r = tx.exec("UPDATE workflow_runs SET status = 'running', updated_at = now() WHERE id = $1 AND status = 'pending'",
                     {run});
    if (!r.ok()) return r.error();
    return true;
  };
  co_return co_await c.sql_transaction(std::move(fn));
}

// One attempt of the module's service call. The attempt budget lives in
// workflow_run_modules (retry_count / max_retries), so it holds across
// crashes and is read before every call: no call once it is spent.
Task<Result<Value>> call_service(ActorContext& c, Value job) {
  const std::string run = str_or(job, "runId"), module = str_or(job, "moduleId");
  const std::string key = c.idempotency_key();
  const std::string budget_sql =
      "SELECT status, retry_count, max_retries, last_error FROM workflow_run_modules "
      "WHERE run_id = $1 AND module_id = $2";
  Array budget_params{run, module};
  auto budget = co_await c.sql(budget_sql, std::move(budget_params));
  if (!budget.ok()) co_return budget.error();
  if (budget->rows.empty())
    co_return obj({{"outcome", "failed"}, {"error", "workflow.module_row_missing"}, {"idempotencyKey", key}});
  const Value row = budget->rows[0];
  const int64_t retries = int_or(row, "retry_count", 0), max_retries = int_or(row, "max_retries", 1);
  if (str_or(row, "status") == "failed" || retries >= max_retries)
    co_return obj({{"outcome", "failed"},
                   {"error", str_or(row, "last_error", "retries exhausted")},
                   {"retryCount", retries},
                   {"idempotencyKey", key}});
  const int64_t attempt = retries + 1;
  spdlog::info("workflow module call runId={} moduleId={} commandId={} idempotencyKey={} retryAttempt={}", run, module,
               str_or(job, "commandId"), key, attempt);

  net::HttpRequest req;
  req.method = "POST";
  req.url = str_or(job, "url");
  req.headers.emplace_back("content-type", "application/json");
  req.body = json::dump(obj({{"runId", run},
                             {"moduleId", module},
                             {"userId", field_or_null(job, "userId")},
                             {"missionInstanceId", field_or_null(job, "missionInstanceId")},
                             {"input", field_or_null(job, "input")}}));
  req.idempotency_key = key;
  req.request_id = str_or(job, "commandId");
  req.total_timeout = std::chrono::milliseconds(int_or(job, "timeoutMs", kDefaultTimeoutMs));
  req.retry.max_attempts = 1;  // every attempt is counted here, one by one
  auto res = co_await c.http(std::move(req));
  if (res.ok()) {
    auto parsed = json::parse(res->body, false);
    co_return obj({{"outcome", "succeeded"},
                   {"status", res->status},
                   {"body", parsed.ok() ? *parsed : Value(res->body)},
                   {"retryCount", retries},
                   {"idempotencyKey", key}});
  }
  const Error err = res.error();
  const std::string what = err.qualified() + ": " + err.message;
  if (!outbound_retryable(err)) {
    spdlog::warn("workflow module failed runId={} moduleId={} idempotencyKey={} retryAttempt={} error={} (not retryable)",
                 run, module, key, attempt, what);
    co_return obj({{"outcome", "failed"},
                   {"error", what},
                   {"httpStatus", outbound_status(err)},
                   {"retryable", false},
                   {"retryCount", retries},
                   {"idempotencyKey", key}});
  }
  const int64_t backoff = int_or(job, "backoffMs", 1000) << std::min<int64_t>(attempt - 1, 20);
  std::function<Result<Value>(pg::Tx&)> count = [=](pg::Tx& tx) -> Result<Value> {
    auto u = tx.exec(
        "UPDATE workflow_run_modules SET retry_count = retry_count + 1, status = 'retrying', last_error = $3, "
        "next_attempt_at = now() + ($4::bigint * interval '1 millisecond'), updated_at = now() "
        "WHERE run_id = $1 AND module_id = $2 AND retry_count < max_retries RETURNING retry_count, max_retries",
        {run, module, what, backoff});
    if (!u.ok()) return u.error();
    if (u->rows.empty()) return obj({{"retryCount", max_retries}, {"maxRetries", max_retries}});
    auto e = tx.exec(
        "INSERT INTO workflow_events (run_id, module_id, type, payload) VALUES ($1, $2, 'module.retrying', $3::jsonb)",
        {run, module,
         json::dump(obj({{"retryAttempt", attempt}, {"error", what}, {"idempotencyKey", key}, {"backoffMs", backoff}}))});
    if (!e.ok()) return e.error();
    return obj({{"retryCount", field_or_null(u->rows[0], "retry_count")},
                {"maxRetries", field_or_null(u->rows[0], "max_retries")}});
  };
  auto counted = co_await c.sql_transaction(std::move(count));
  if (!counted.ok()) co_return counted.error();
  const int64_t now_retries = int_or(*counted, "retryCount", attempt);
  spdlog::warn("workflow module attempt failed runId={} moduleId={} idempotencyKey={} retryAttempt={} retryCount={} "
               "maxRetries={} error={}",
               run, module, key, attempt, now_retries, max_retries, what);
  if (now_retries >= int_or(*counted, "maxRetries", max_retries))
    co_return obj({{"outcome", "failed"},
                   {"error", what},
                   {"httpStatus", outbound_status(err)},
                   {"retryable", true},
                   {"retryCount", now_retries},
                   {"idempotencyKey", key}});
  // The workflow retries this step after its backoff, with the same key.
  co_return make_error("workflow", "module_attempt_failed", what);
}

// Records a module's outcome. Every write is guarded (status transition,
// insert-or-ignore), so re-running this step after a crash records nothing twice.
Task<Result<Value>> record_outcome(ActorContext& c, Value job, Value outcome) {
  const std::string run = str_or(job, "runId"), module = str_or(job, "moduleId");
  std::function<Result<Value>(pg::Tx&)> fn = [=](pg::Tx& tx) -> Result<Value> {
    const bool ok = str_or(outcome, "outcome") == "succeeded";
    const Value& body = field_or_null(outcome, "body");
    const Value output = body.is_object() && body.find("output") ? *body.find("output") : body;
    Result<pg::QueryResult> u = ok ? tx.exec(
                                         "UPDATE workflow_run_modules SET status = 'succeeded', output = $3::jsonb, "
                                         "last_error = NULL, finished_at = now(), updated_at = now() "
                                         "WHERE run_id = $1 AND module_id = $2 AND status NOT IN ('succeeded', 'failed')",
                                         {run, module, json::dump(output)})
                                   : tx.exec(
                                         "UPDATE workflow_run_modules SET status = 'failed', last_error = $3, "
                                         "finished_at = now(), updated_at = now() "
                                         "WHERE run_id = $1 AND module_id = $2 AND status NOT IN ('succeeded', 'failed')",
                                         {run, module, str_or(outcome, "error")});
    if (!u.ok()) return u.error();
    if (u->affected > 0) {
      auto e = tx.exec(
          "INSERT INTO workflow_events (run_id, module_id, type, payload) VALUES ($1, $2, $3, $4::jsonb)",
          {run, module, ok ? "module.succeeded" : "module.failed",
           json::dump(obj({{"commandId", field_or_null(job, "commandId")},
                           {"idempotencyKey", field_or_null(outcome, "idempotencyKey")},
                           {"retryCount", field_or_null(outcome, "retryCount")},
                           {"error", field_or_null(outcome, "error")}}))});
      if (!e.ok()) return e.error();
    }
    if (ok) {
      // The service's artifacts, or the whole response as the `result` artifact.
      Array artifacts;
      if (const Value* a = body.is_object() ? body.find("artifacts") : nullptr; a && a->is_array())
        artifacts = a->as_array();
      else
        artifacts.push_back(obj({{"key", "result"}, {"kind", "module_output"}, {"content", json::dump(body)}}));
      for (const auto& a : artifacts) {
        const std::string key = str_or(a, "key");
        if (key.empty()) continue;
        const Value& content = field_or_null(a, "content");
        auto ins = tx.exec(
            "INSERT INTO workflow_artifacts (run_id, module_id, artifact_key, kind, content, metadata) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (run_id, module_id, artifact_key) DO NOTHING",
            {run, module, key, str_or(a, "kind", "document"),
             content.is_string() ? content : (content.is_null() ? Value() : Value(json::dump(content))),
             json::dump(field_or_null(a, "metadata").is_object() ? field_or_null(a, "metadata") : Value(Object{}))});
        if (!ins.ok()) return ins.error();
      }
    }
    auto before = tx.exec("SELECT status FROM workflow_runs WHERE id = $1", {run});
    if (!before.ok()) return before.error();
    auto r = tx.exec(
        "UPDATE workflow_runs r SET status = CASE "
        "WHEN NOT EXISTS (SELECT 1 FROM workflow_run_modules m WHERE m.run_id = r.id "
        "  AND m.status NOT IN ('succeeded', 'skipped')) THEN 'completed' "
        "WHEN EXISTS (SELECT 1 FROM workflow_run_modules m WHERE m.run_id = r.id AND m.status = 'failed') "
        "  THEN 'failed' ELSE 'running' END, updated_at = now() "
        "WHERE r.id = $1 AND r.status NOT IN ('paused', 'cancelled') RETURNING r.status",
        {run});
    if (!r.ok()) return r.error();
    std::string run_status = before->rows.empty() ? "" : str_or(before->rows[0], "status");
    if (!r->rows.empty()) {
      const std::string after = str_or(r->rows[0], "status");
      if (after != run_status && (after == "completed" || after == "failed")) {
        auto e = tx.exec("INSERT INTO workflow_events (run_id, type, payload) VALUES ($1, $2, '{}'::jsonb)",
                         {run, "run." + after});
        if (!e.ok()) return e.error();
      }
      run_status = after;
    }
    auto m = tx.exec("SELECT status, retry_count, last_error FROM workflow_run_modules WHERE run_id = $1 AND module_id = $2",
                     {run, module});
    if (!m.ok()) return m.error();
    Value mod = m->rows.empty() ? Value(Object{}) : m->rows[0];
    return obj({{"runStatus", run_status}, {"module", mod}});
  };
  co_return co_await c.sql_transaction(std::move(fn));
}

Task<Result<Value>> mirror_pause(ActorContext& c, std::string run, bool pause) {
  std::function<Result<Value>(pg::Tx&)> fn = [=](pg::Tx& tx) -> Result<Value> {
    auto u = pause ? tx.exec(
                         "UPDATE workflow_runs SET status = 'paused', updated_at = now() "
                         "WHERE id = $1 AND status IN ('pending', 'running') RETURNING status",
                         {run})
                   : tx.exec(
                         "UPDATE workflow_runs SET status = 'running', updated_at = now() "
                         "WHERE id = $1 AND status = 'paused' RETURNING status",
                         {run});
    if (!u.ok()) return u.error();
    if (u->affected > 0) {
      auto e = tx.exec("INSERT INTO workflow_events (run_id, type, payload) VALUES ($1, $2, '{}'::jsonb)",
                       {run, pause ? "run.paused" : "run.resumed"});
      if (!e.ok()) return e.error();
    }
    return true;
  };
  co_return co_await c.sql_transaction(std::move(fn));
}

void finish_module(ActorContext& c, const Value& job, const Value& outcome, const Result<Value>& recorded) {
  Value& s = c.mutate_state();
  const std::string module_id = str_or(job, "moduleId");
  const std::string command = str_or(job, "commandId");
  Value* m = find_module(s, module_id);
  std::string status = str_or(outcome, "outcome", "failed");
  if (recorded.ok()) {
    const Value& row = field_or_null(*recorded, "module");
    status = str_or(row, "status", status);
    if (m) {
      (*m)["retryCount"] = int_or(row, "retry_count", 0);
      (*m)["lastError"] = field_or_null(row, "last_error");
    }
    const std::string run_status = str_or(*recorded, "runStatus");
    if (!run_status.empty()) s["status"] = run_status;
  } else {
    // The outcome could not be written to Postgres: never silent.
    spdlog::error("workflow module outcome not recorded runId={} moduleId={} commandId={}: {}", str_or(job, "runId"),
                  module_id, command, recorded.error().message);
    if (m) (*m)["lastError"] = "not recorded: " + recorded.error().message;
  }
  if (m) (*m)["status"] = status;
  set_command(s, command, obj({{"kind", "runModule"}, {"moduleId", module_id}, {"status", status}}));
  spdlog::info("workflow module done runId={} moduleId={} commandId={} status={}", str_or(job, "runId"), module_id,
               command, status);
}

Status run_job(Workflow& it, const Value& job) {
  auto started = it.step_async(
      "mark-running", [job](ActorContext& c) { return mark_running(c, job); }, db_step_options());
  if (!started.ok())
    spdlog::error("workflow module not marked running runId={} moduleId={}: {}", str_or(job, "runId"),
                  str_or(job, "moduleId"), started.error().message);
  StepOptions call_opts;
  call_opts.max_attempts = static_cast<uint32_t>(int_or(job, "maxRetries", kDefaultMaxRetries) + 2);
  call_opts.backoff = std::chrono::milliseconds(int_or(job, "backoffMs", 1000));
  call_opts.timeout = std::chrono::milliseconds(int_or(job, "timeoutMs", kDefaultTimeoutMs) + 10'000);
  auto called = it.step_async(
      "call", [job](ActorContext& c) { return call_service(c, job); }, call_opts);
  Value outcome = called.ok() ? *called
                              : obj({{"outcome", "failed"}, {"error", called.error().qualified() + ": " + called.error().message}});
  auto recorded = it.step_async(
      "record", [job, outcome](ActorContext& c) { return record_outcome(c, job, outcome); }, db_step_options());
  auto applied = it.step("apply", [&]() -> Result<Value> {
    finish_module(it.actor(), job, outcome, recorded);
    return true;
  });
  if (!applied.ok()) return applied.error();
  return Ok{};
}

Result<Value> run_loop(Workflow& wf) {
  return wf.loop("commands", [](Workflow& it) -> Result<LoopResult> {
    auto picked = it.step("pick", [&]() -> Result<Value> { return pick_deferred(it.actor()); });
    if (!picked.ok()) return picked.error();
    Value cmd = *picked;
    if (cmd.is_null()) {
      auto msg = it.queue_next("next", {"commands"});
      if (!msg.ok()) return msg.error();
      cmd = msg->body;
    }
    auto decision = it.step("accept", [&]() -> Result<Value> { return accept(it.actor(), cmd); });
    if (!decision.ok()) return decision.error();
    const std::string action = str_or(*decision, "action");
    spdlog::info("workflow command runId={} commandId={} kind={} moduleId={} idempotencyKey={} action={}",
                 str_or(it.actor().state(), "runId"), str_or(cmd, "commandId"), str_or(cmd, "kind"),
                 str_or(cmd, "moduleId"), str_or(cmd, "requestKey"), action);
    if (action == "run") {
      auto st = run_job(it, field_or_null(*decision, "job"));
      if (!st.ok()) return st.error();
    } else if (action == "pause" || action == "resume") {
      const std::string run = str_or(it.actor().state(), "runId");
      const bool pause = action == "pause";
      auto mirrored = it.step_async(
          "mirror", [run, pause](ActorContext& c) { return mirror_pause(c, run, pause); }, db_step_options());
      auto applied = it.step("apply", [&]() -> Result<Value> {
        Value& s = it.actor().mutate_state();
        if (!mirrored.ok())
          spdlog::error("workflow run status not mirrored runId={}: {}", run, mirrored.error().message);
        else
          s["status"] = pause ? "paused" : "running";
        return true;
      });
      if (!applied.ok()) return applied.error();
    }
    return LoopResult::next();
  });
}

}  // namespace

std::string command_id_for(const std::string& run_id, const std::string& target, const std::string& client_key) {
  std::string material = run_id;
  material += '\0';
  material += target;
  material += '\0';
  material += client_key;
  return "cmd-" + sha256_hex(material).substr(0, 32);
}

ActorDefinition workflow_run_actor() {
  ActorDefinition def("workflowRunActor");
  def.create_state([](ActorContext& c, const Value&) -> Result<Value> {
       const ActorKey& key = c.key();
       if (key.size() != 1 || !is_uuid(key[0]))
         return make_error("validation", "invalid_key", "workflowRunActor's key is [runId] (a UUID).");
       return obj({{"runId", key[0]},
                   {"created", false},
                   {"status", "pending"},
                   {"paused", false},
                   {"modules", Array{}},
                   {"commands", Object{}},
                   {"deferred", Array{}},
                   {"commandSeq", 0}});
     })
      .queue("commands")
      .run(run_loop)
      .async_action("create", create)
      .action("getStatus",
              [](ActionContext& c, const Array&) -> Result<Value> {
                if (!bool_or(c.state(), "created", false))
                  return make_error("workflow", "run_not_found", "No workflow run `" + str_or(c.state(), "runId") + "`.");
                return status_of(c.state());
              })
      .action("allocateCommandId", [](ActionContext& c, const Array&) -> Result<Value> {
        Value& s = c.mutate_state();
        const int64_t n = int_or(s, "commandSeq", 0) + 1;
        s["commandSeq"] = n;
        return Value("cmd-" + std::to_string(n) + "-" + str_or(s, "runId"));
      });
  return def;
}

}  // namespace anvil::growqr
