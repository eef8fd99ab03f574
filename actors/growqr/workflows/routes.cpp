// add_workflows: workflowRunActor and the /workflow-runs routes. Routes
// validate, then create the run or enqueue a command on the run's actor and
// answer at once; only workflowRunActor executes modules.
//
//   POST /workflow-runs                              body {userId?, definitionId? | modules?,
//                                                    input?, missionInstanceId?, idempotencyKey?};
//                                                    the client key (Idempotency-Key header or
//                                                    body idempotencyKey) is required: the run id
//                                                    derives from (user, key). 201 new, 200 existing
//   GET  /workflow-runs/:runId                       status (actor state + module rows)
//   POST /workflow-runs/:runId/pause|resume          202 {commandId}
//   POST /workflow-runs/:runId/modules/:moduleId/run Idempotency-Key header required;
//                                                    202 {commandId}, the same for the same key
// Configuration (AppContext::config): <SERVICE>_SERVICE_URL per module service
// (INTERVIEW_SERVICE_URL, ROLEPLAY_SERVICE_URL, RESUME_SERVICE_URL, ...),
// WORKFLOW_RETRY_BACKOFF_MS (default 1000). The route resolves them and puts
// them in the command, so a command replayed after a restart calls the same URL.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "actors/growqr/app.hpp"
#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "actors/growqr/workflows/workflow_run_actor.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

const char* const kActor = "workflowRunActor";

std::string service_config_key(const std::string& service) {
  std::string key;
  for (char ch : service) key += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return key + "_SERVICE_URL";
}

std::string client_key(const AppRequest& req, const Value& body) {
  if (auto h = req.header("idempotency-key"); h && !h->empty()) return *h;
  return str_or(body, "idempotencyKey");
}

// The run's row, or workflow.run_not_found (without creating an actor for an
// id nobody created).
Task<Result<Value>> run_row(AppContext& c, std::string run_id) {
  if (!is_uuid(run_id))
    co_return make_error("workflow", "run_not_found", "No workflow run `" + run_id + "`.");
  pg::Pool* pool = c.services().pg;
  if (!pool) co_return pg::not_configured_error();
  std::string sql = "SELECT id, user_id, status FROM workflow_runs WHERE id = $1";
  Array params{run_id};
  auto r = co_await pool->query(std::move(sql), std::move(params));
  if (!r.ok()) co_return r.error();
  if (r->rows.empty()) co_return make_error("workflow", "run_not_found", "No workflow run `" + run_id + "`.");
  co_return r->rows[0];
}

Task<Result<Value>> call_run(AppContext& c, std::string run_id, std::string action, Array args) {
  std::string name = kActor;
  ActorKey key{run_id};
  co_return co_await c.actors().call(std::move(name), std::move(key), std::move(action), std::move(args));
}

Task<Status> enqueue(AppContext& c, std::string run_id, Value command) {
  std::string name = kActor;
  ActorKey key{run_id};
  std::string queue = "commands";
  auto r = co_await c.actors().send(std::move(name), std::move(key), std::move(queue), std::move(command), false);
  if (!r.ok()) co_return r.error();
  co_return Ok{};
}

void log_route(const AppRequest& req, const std::string& run, const std::string& module, const std::string& key,
               const std::string& command, const std::string& outcome) {
  spdlog::info("route {} {} requestId={} runId={} moduleId={} idempotencyKey={} commandId={} outcome={}", req.method,
               req.path, req.request_id, run, module, key, command, outcome);
}

Task<AppResponse> create_run(AppContext& c, AppRequest req) {
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  std::string user = str_or(*body, "userId");
  if (user.empty()) {
    auto h = co_await authenticate(c, req);
    if (!h.ok()) co_return error_response(h.error());
    user = *h;
  }
  const std::string key = client_key(req, *body);
  if (key.empty())
    co_return error_response(make_error(
        "validation", "idempotency_key_required",
        "Creating a workflow run needs a client key (Idempotency-Key header or idempotencyKey): a double submit must give one run."));
  std::string material = "workflow-run";
  material += '\0';
  material += user;
  material += '\0';
  material += key;
  const std::string run_id = derived_uuid(material);
  Value spec = *body;
  spec["userId"] = user;
  spec["idempotencyKey"] = key;
  std::string action = "create";
  Array args{spec};
  auto r = co_await call_run(c, run_id, action, args);
  log_route(req, run_id, "", key, "", r.ok() ? "ok" : r.error().qualified());
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(bool_or(*r, "existing", false) ? 200 : 201, *r);
}

Task<AppResponse> get_run(AppContext& c, AppRequest req) {
  const std::string run_id = req.params["runId"];
  auto row = co_await run_row(c, run_id);
  if (!row.ok()) co_return error_response(row.error());
  std::string action = "getStatus";
  Array no_args;
  auto r = co_await call_run(c, run_id, action, no_args);
  if (!r.ok()) co_return error_response(r.error());
  // Retry counts and errors as recorded in Postgres (the executor's budget).
  std::string sql =
      "SELECT module_id, position, status, retry_count, max_retries, command_id, last_error, output, "
      "next_attempt_at, started_at, finished_at FROM workflow_run_modules WHERE run_id = $1 ORDER BY position";
  Array params{run_id};
  auto rows = co_await c.services().pg->query(std::move(sql), std::move(params));
  if (!rows.ok()) co_return error_response(rows.error());
  Value out = *r;
  out["status"] = field_or_null(*row, "status");
  out["moduleRows"] = rows->rows;
  co_return AppResponse::json(200, out);
}

Task<AppResponse> pause_or_resume(AppContext& c, AppRequest req, std::string kind) {
  const std::string run_id = req.params["runId"];
  auto row = co_await run_row(c, run_id);
  if (!row.ok()) co_return error_response(row.error());
  std::string command_id;
  const std::string key = req.header("idempotency-key").value_or("");
  if (!key.empty()) {
    command_id = command_id_for(run_id, kind, key);
  } else {
    std::string action = "allocateCommandId";
    Array no_args;
    auto id = co_await call_run(c, run_id, action, no_args);
    if (!id.ok()) co_return error_response(id.error());
    command_id = id->as_string();
  }
  Value command = obj({{"kind", kind}, {"commandId", command_id}, {"requestKey", key}});
  auto st = co_await enqueue(c, run_id, command);
  log_route(req, run_id, "", key, command_id, st.ok() ? "queued" : st.error().qualified());
  if (!st.ok()) co_return error_response(st.error());
  co_return AppResponse::json(202, obj({{"runId", run_id}, {"commandId", command_id}, {"kind", kind}}));
}

Task<AppResponse> run_module(AppContext& c, AppRequest req) {
  const std::string run_id = req.params["runId"];
  const std::string module_id = req.params["moduleId"];
  const std::string key = req.header("idempotency-key").value_or("");
  if (key.empty())
    co_return error_response(make_error("validation", "idempotency_key_required",
                                        "Running a module needs an Idempotency-Key header."));
  auto row = co_await run_row(c, run_id);
  if (!row.ok()) co_return error_response(row.error());
  std::string action = "getStatus";
  Array no_args;
  auto status = co_await call_run(c, run_id, action, no_args);
  if (!status.ok()) co_return error_response(status.error());
  const Value* module = nullptr;
  if (const Value* mods = status->find("modules"); mods && mods->is_array())
    for (const auto& m : mods->as_array())
      if (str_or(m, "moduleId") == module_id) module = &m;
  if (!module)
    co_return error_response(make_error("workflow", "module_not_found",
                                        "Run `" + run_id + "` has no module `" + module_id + "`.",
                                        obj({{"runId", run_id}, {"moduleId", module_id}})));
  const std::string command_id = command_id_for(run_id, "module:" + module_id, key);
  const std::string existing = str_or(*module, "commandId");
  if (existing == command_id) {
    log_route(req, run_id, module_id, key, command_id, "duplicate");
    co_return AppResponse::json(202, obj({{"runId", run_id},
                                          {"moduleId", module_id},
                                          {"commandId", command_id},
                                          {"status", field_or_null(*module, "status")},
                                          {"duplicate", true}}));
  }
  if (!existing.empty())
    co_return error_response(make_error("workflow", "module_already_run",
                                        "Module `" + module_id + "` already ran with another Idempotency-Key.",
                                        obj({{"commandId", existing}, {"moduleId", module_id}})));
  const std::string config_key = service_config_key(str_or(*module, "service"));
  auto base = c.config(config_key);
  if (!base || base->empty())
    co_return error_response(make_error("workflow", "service_not_configured",
                                        "The node has no " + config_key + " for module `" + module_id + "`.",
                                        obj({{"configKey", config_key}})));
  std::string url = *base;
  while (!url.empty() && url.back() == '/') url.pop_back();
  int64_t backoff = 1000;
  if (auto b = c.config("WORKFLOW_RETRY_BACKOFF_MS"); b && !b->empty()) backoff = std::max<int64_t>(1, std::atoll(b->c_str()));
  Value command = obj({{"kind", "runModule"},
                       {"commandId", command_id},
                       {"moduleId", module_id},
                       {"requestKey", key},
                       {"url", url},
                       {"backoffMs", backoff}});
  auto st = co_await enqueue(c, run_id, command);
  log_route(req, run_id, module_id, key, command_id, st.ok() ? "queued" : st.error().qualified());
  if (!st.ok()) co_return error_response(st.error());
  co_return AppResponse::json(202, obj({{"runId", run_id},
                                        {"moduleId", module_id},
                                        {"commandId", command_id},
                                        {"status", "queued"},
                                        {"duplicate", false}}));
}

}  // namespace

void add_workflows(AppDefinition& app) {
  app.actor(workflow_run_actor());
  app.route("POST", "/workflow-runs", create_run);
  app.route("GET", "/workflow-runs/:runId", get_run);
  app.route("POST", "/workflow-runs/:runId/pause", [](AppContext& c, AppRequest req) {
    std::string kind = "pause";
    return pause_or_resume(c, std::move(req), kind);
  });
  app.route("POST", "/workflow-runs/:runId/resume", [](AppContext& c, AppRequest req) {
    std::string kind = "resume";
    return pause_or_resume(c, std::move(req), kind);
  });
  app.route("POST", "/workflow-runs/:runId/modules/:moduleId/run", run_module);
}

}  // namespace anvil::growqr
