// add_home: the portal routes a frontend reads — /home, /users, /agents and
// /git. They authenticate, validate and hand over to actors (or read the
// Postgres read models); no business logic lives here.
//
//   GET    /home                    active missions, recent conversations, recent events
//   GET    /home/notifications      the caller's recent Grow Events, newest first
//   GET    /users/me                profile (the users row; mirrored on first sight)
//   PATCH  /users/me                body {displayName?, email?, profile?}
//   GET    /agents                  the agent catalog
//   GET    /git/files?prefix=P      memory file paths (memoryActor.listMemory)
//   GET    /git/file?path=P         {path, content}
//   PUT    /git/file?path=P         body {content}; memoryActor.commitMemory
//   DELETE /git/file?path=P         memoryActor.deleteMemory
//   GET    /actors/runtime          the caller's agent runtime (user_stacks row)
//   POST   /actors/runtime          provision it (userActor.provisionRuntime, sandbox provider)
//   DELETE /actors/runtime          stop it (userActor.stopRuntime)
#include <spdlog/spdlog.h>

#include "actors/growqr/agent/grow_agent.hpp"
#include "actors/growqr/app.hpp"
#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

// Call sites pass named locals only: GCC 12 miscompiles brace and
// string-literal temporaries inside co_await expressions.
Task<Result<Value>> call(AppContext& c, std::string name, std::string user, std::string action, Array args) {
  ActorKey key{std::move(user)};
  co_return co_await c.actors().call(std::move(name), std::move(key), std::move(action), std::move(args));
}

Task<Result<Array>> rows(AppContext& c, std::string q, Array params) {
  auto r = co_await c.sql(std::move(q), std::move(params));
  if (!r.ok()) co_return r.error();
  co_return std::move(r->rows);
}

Task<AppResponse> home(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  std::string missions_actor = "growActor", missions_action = "getActiveState";
  Array missions_args;
  auto missions = co_await call(c, std::move(missions_actor), *user, std::move(missions_action), std::move(missions_args));
  if (!missions.ok()) co_return error_response(missions.error());
  std::string convs_sql =
                             "SELECT id::text AS \"conversationId\", title, status, "
                             "(extract(epoch from updated_at) * 1000)::bigint AS \"updatedAt\" "
                             "FROM grow_conversations WHERE user_id = $1 AND status = 'active' "
                             "ORDER BY updated_at DESC LIMIT 5";
  Array convs_params{Value(*user)};
  auto convs = co_await rows(c, std::move(convs_sql), std::move(convs_params));
  if (!convs.ok()) co_return error_response(convs.error());
  std::string events_sql =
                              "SELECT type, mission_instance_id AS \"missionInstanceId\", processing_status AS status, "
                              "(extract(epoch from received_at) * 1000)::bigint AS \"receivedAt\" "
                              "FROM grow_events WHERE user_id = $1 ORDER BY received_at DESC LIMIT 10";
  Array events_params{Value(*user)};
  auto events = co_await rows(c, std::move(events_sql), std::move(events_params));
  if (!events.ok()) co_return error_response(events.error());
  co_return AppResponse::json(200, obj({{"userId", *user},
                                        {"missions", field_or_null(*missions, "missions")},
                                        {"active", field_or_null(*missions, "active")},
                                        {"conversations", *convs},
                                        {"events", *events}}));
}

Task<AppResponse> notifications(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  int64_t limit = 50;
  if (auto l = req.query_param("limit")) {
    try {
      limit = std::clamp<int64_t>(std::stoll(*l), 1, 200);
    } catch (const std::exception&) {
      co_return error_response(make_error("validation", "invalid_query", "limit must be a number."));
    }
  }
  std::string out_sql =
                           "SELECT id::text AS id, type, mission_instance_id AS \"missionInstanceId\", payload, "
                           "(extract(epoch from coalesce(occurred_at, received_at)) * 1000)::bigint AS \"at\" "
                           "FROM grow_events WHERE user_id = $1 AND processing_status = 'processed' "
                           "ORDER BY received_at DESC LIMIT $2";
  Array out_params{Value(*user), Value(limit)};
  auto out = co_await rows(c, std::move(out_sql), std::move(out_params));
  if (!out.ok()) co_return error_response(out.error());
  co_return AppResponse::json(200, obj({{"notifications", *out}}));
}

Task<AppResponse> me(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  std::string r_actor = "userActor", r_action = "getProfile";
  Array r_args;
  auto r = co_await call(c, std::move(r_actor), *user, std::move(r_action), std::move(r_args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, *r);
}

Task<AppResponse> update_me(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  std::string r_actor = "userActor", r_action = "updateProfile";
  Array r_args{*body};
  auto r = co_await call(c, std::move(r_actor), *user, std::move(r_action), std::move(r_args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, *r);
}

Task<AppResponse> agents(AppContext&, AppRequest) {
  Array tools;
  const Value specs = agent_tool_specs();
  for (const Value& t : specs.as_array())
    tools.push_back(obj({{"name", field_or_null(t, "name")}, {"description", field_or_null(t, "description")}}));
  Value catalog = Array{
      obj({{"name", "growAgent"}, {"key", "[userId]"}, {"description", "The user's master agent (LLM tool loop)."},
           {"tools", tools}}),
      obj({{"name", "subAgent"}, {"key", "[userId, subAgentId]"},
           {"description", "A worker session in the user's OpenCode runtime, started by spawn_sub_agent."}}),
      obj({{"name", "conversationActor"}, {"key", "[conversationId]"},
           {"description", "A streamed conversation, idempotent per message id."}}),
  };
  co_return AppResponse::json(200, obj({{"agents", catalog}}));
}

Result<std::string> path_param(const AppRequest& req) {
  auto p = req.query_param("path");
  if (!p || p->empty()) return make_error("validation", "invalid_query", "The `path` query parameter is required.");
  return *p;
}

Task<AppResponse> git_list(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  Array args;
  if (auto prefix = req.query_param("prefix"); prefix && !prefix->empty()) args.emplace_back(*prefix);
  std::string r_actor = "memoryActor", r_action = "listMemory";
  auto r = co_await call(c, std::move(r_actor), *user, std::move(r_action), std::move(args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, obj({{"paths", *r}}));
}

Task<AppResponse> git_read(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto path = path_param(req);
  if (!path.ok()) co_return error_response(path.error());
  std::string r_actor = "memoryActor", r_action = "readMemory";
  Array r_args{Value(*path)};
  auto r = co_await call(c, std::move(r_actor), *user, std::move(r_action), std::move(r_args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, obj({{"path", *path}, {"content", *r}}));
}

Task<AppResponse> git_write(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto path = path_param(req);
  if (!path.ok()) co_return error_response(path.error());
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  const Value* content = body->find("content");
  if (!content || !content->is_string())
    co_return error_response(make_error("validation", "invalid_body", "The body needs `content` (a string)."));
  std::string r_actor = "memoryActor", r_action = "commitMemory";
  Array r_args{Value(*path), *content};
  auto r = co_await call(c, std::move(r_actor), *user, std::move(r_action), std::move(r_args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, *r);
}

Task<AppResponse> git_delete(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto path = path_param(req);
  if (!path.ok()) co_return error_response(path.error());
  std::string r_actor = "memoryActor", r_action = "deleteMemory";
  Array r_args{Value(*path)};
  auto r = co_await call(c, std::move(r_actor), *user, std::move(r_action), std::move(r_args));
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, *r);
}

Task<AppResponse> runtime_action(AppContext& c, AppRequest req, std::string action) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  std::string actor = "userActor";
  Array none;
  auto r = co_await call(c, std::move(actor), *user, std::move(action), std::move(none));
  spdlog::info("route {} {} requestId={} userId={} outcome={}", req.method, req.path, req.request_id, *user,
               r.ok() ? "ok" : r.error().qualified());
  if (!r.ok()) co_return AppResponse::error(r.error(), r.error().code == "not_configured" ? 503 : 0);
  co_return AppResponse::json(200, *r);
}

Task<AppResponse> provision_runtime(AppContext& c, AppRequest req) {
  std::string action = "provisionRuntime";
  co_return co_await runtime_action(c, std::move(req), std::move(action));
}

Task<AppResponse> stop_runtime(AppContext& c, AppRequest req) {
  std::string action = "stopRuntime";
  co_return co_await runtime_action(c, std::move(req), std::move(action));
}

Task<AppResponse> runtime_status(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  std::string q =
      "SELECT status, opencode_url AS \"opencodeUrl\", last_error AS \"lastError\", "
      "(extract(epoch from updated_at) * 1000)::bigint AS \"updatedAt\" FROM user_stacks WHERE user_id = $1";
  Array params{Value(*user)};
  auto out = co_await rows(c, std::move(q), std::move(params));
  if (!out.ok()) co_return error_response(out.error());
  if (out->empty()) co_return AppResponse::json(200, obj({{"userId", *user}, {"status", "none"}}));
  Value row = (*out)[0];
  row["userId"] = *user;
  co_return AppResponse::json(200, row);
}

}  // namespace

void add_home(AppDefinition& app) {
  app.route("GET", "/home", home);
  app.route("GET", "/home/notifications", notifications);
  app.route("GET", "/users/me", me);
  app.route("PATCH", "/users/me", update_me);
  app.route("GET", "/agents", agents);
  app.route("GET", "/git/files", git_list);
  app.route("GET", "/git/file", git_read);
  app.route("PUT", "/git/file", git_write);
  app.route("DELETE", "/git/file", git_delete);
  // The caller's agent runtime (the Rivet manager API keeps /actors and
  // /actors/{id}; only this exact path is the application's).
  app.route("GET", "/actors/runtime", runtime_status);
  app.route("POST", "/actors/runtime", provision_runtime);
  app.route("DELETE", "/actors/runtime", stop_runtime);
}

}  // namespace anvil::growqr
