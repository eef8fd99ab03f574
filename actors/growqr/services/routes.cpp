// The /services routes (seed 000: "/services/interview|roleplay
// configure/review"): authenticate, validate and hand the request to the
// caller's service actor — the only code that calls the product services.
//
//   POST /services/:service/configure   body {requestId?, missionInstanceId?, config}
//   POST /services/:service/sessions    body {requestId?, missionInstanceId?, options}
//   POST /services/:service/review      body {requestId?, missionInstanceId?, sessionId?, input}
//   GET  /services/:service/jobs/:jobId
// :service is interview | roleplay | resume. The request id (body
// `requestId`, else the Idempotency-Key header) is required: a repeated one
// is the same job, never a second call. Answers the job: 200 completed,
// 202 pending (the service is down; a durable retry completes it), 502 failed.
#include <spdlog/spdlog.h>

#include "actors/growqr/app.hpp"
#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/missions/app_util.hpp"

namespace anvil::growqr {
namespace {

Result<std::string> service_actor_name(const AppRequest& req) {
  const std::string s = req.params.at("service");
  if (s == "interview" || s == "roleplay" || s == "resume") return s + "Service";
  return make_error("service", "unknown", "Unknown service `" + s + "` (interview, roleplay or resume).");
}

AppResponse job_response(const Value& job) {
  const std::string status = str_or(job, "status");
  return AppResponse::json(status == "completed" ? 200 : status == "failed" ? 502 : 202, job);
}

Task<AppResponse> submit(AppContext& c, AppRequest req, std::string operation, std::string payload_field) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto actor = service_actor_name(req);
  if (!actor.ok()) co_return AppResponse::error(actor.error(), 404);
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  std::string request_id = str_or(*body, "requestId");
  if (request_id.empty()) request_id = req.header("idempotency-key").value_or("");
  if (request_id.empty())
    co_return error_response(make_error("validation", "request_id_required",
                                        "A service request needs an id (`requestId` or the Idempotency-Key header)."));
  Value in = obj({{"requestId", request_id}});
  if (const Value* v = body->find("missionInstanceId"); v && !v->is_nullish()) in["missionInstanceId"] = *v;
  if (const Value* v = body->find("sessionId"); v && !v->is_nullish()) in["sessionId"] = *v;
  in[payload_field] = field_or_null(*body, payload_field);
  ActorKey key{*user};
  Array args{in};
  auto r = co_await c.actors().call(std::move(*actor), std::move(key), std::move(operation), std::move(args));
  spdlog::info("route POST {} requestId={} userId={} missionInstanceId={} idempotencyKey={} outcome={}", req.path,
               request_id, *user, str_or(in, "missionInstanceId"), r.ok() ? str_or(*r, "idempotencyKey") : "",
               r.ok() ? str_or(*r, "status") : r.error().qualified());
  if (!r.ok()) co_return error_response(r.error());
  co_return job_response(*r);
}

Task<AppResponse> configure(AppContext& c, AppRequest req) {
  std::string op = "configure", field = "config";
  co_return co_await submit(c, std::move(req), std::move(op), std::move(field));
}

Task<AppResponse> sessions(AppContext& c, AppRequest req) {
  std::string op = "createSession", field = "options";
  co_return co_await submit(c, std::move(req), std::move(op), std::move(field));
}

Task<AppResponse> review(AppContext& c, AppRequest req) {
  std::string op = "review", field = "input";
  co_return co_await submit(c, std::move(req), std::move(op), std::move(field));
}

Task<AppResponse> get_job(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto actor = service_actor_name(req);
  if (!actor.ok()) co_return AppResponse::error(actor.error(), 404);
  std::string action = "getJob";
  ActorKey key{*user};
  Array args{Value(req.params.at("jobId"))};
  auto r = co_await c.actors().call(std::move(*actor), std::move(key), std::move(action), std::move(args));
  if (!r.ok()) co_return AppResponse::error(r.error(), r.error().code == "job_not_found" ? 404 : 0);
  co_return job_response(*r);
}

}  // namespace

void add_service_routes(AppDefinition& app) {
  app.route("POST", "/services/:service/configure", configure);
  app.route("POST", "/services/:service/sessions", sessions);
  app.route("POST", "/services/:service/review", review);
  app.route("GET", "/services/:service/jobs/:jobId", get_job);
}

}  // namespace anvil::growqr
