// add_missions: the mission actors, growActor and the mission routes.
//
//   GET  /grow                           growActor.bootstrap for the caller
//   GET  /missions                       the catalog, from the mission registry
//   POST /missions/:missionId/start      :missionId is a mission TYPE from the
//                                        catalog; body {missionInstanceId?}; 202
//   POST /missions/:missionId/pause      :missionId is a mission instance id; 202
//   POST /missions/:missionId/resume     202
//   POST /missions/:missionId/stage      body {patchId?, stage?, data?}, patch id
//                                        from the body or the Idempotency-Key header;
//                                        200 with the mission snapshot
//   POST /missions/:missionId/artifacts  body {key, kind?, content?, metadata?}; 200
// The caller is authenticate()'s (auth/auth.hpp): the Clerk session token's
// subject; in development without a token, the x-user-id header. 401 without.
#include <spdlog/spdlog.h>

#include "actors/growqr/app.hpp"
#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/mission_registry.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "actors/growqr/missions/grow_actor.hpp"
#include "actors/growqr/missions/mission_actor.hpp"

namespace anvil::growqr {
namespace {

Value catalog() {
  Array out;
  for (const auto& t : mission_types()) {
    const StageModel& model = is_custom_mission_type(t.type) ? interview_to_offer_stages() : thin_mission_stages();
    Array stages;
    for (const auto& s : model.stages) stages.push_back(s);
    out.push_back(obj({{"type", t.type}, {"actor", t.actor}, {"title", t.title}, {"stages", stages}}));
  }
  return obj({{"missions", out}});
}

void log_route(const AppRequest& req, const std::string& user, const std::string& mission, const Result<Value>& r) {
  spdlog::info("route {} {} requestId={} userId={} missionInstanceId={} outcome={}", req.method, req.path,
               req.request_id, user, mission, r.ok() ? "ok" : r.error().qualified());
}

Task<AppResponse> get_grow(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  std::string name = "growActor";
  std::string action = "bootstrap";
  ActorKey key{*user};
  Array no_args;
  auto r = co_await c.actors().call(name, key, action, no_args);
  if (!r.ok()) co_return error_response(r.error());
  Value out = *r;
  out["catalog"] = *catalog().find("missions");
  co_return AppResponse::json(200, out);
}

Task<AppResponse> get_catalog(AppContext&, AppRequest) { co_return AppResponse::json(200, catalog()); }

Task<AppResponse> start(AppContext& c, AppRequest req) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  const std::string type = req.params["missionId"];
  const Value& id = field_or_null(*body, "missionInstanceId");
  if (!id.is_null() && !id.is_string())
    co_return error_response(make_error("validation", "invalid_body", "missionInstanceId must be a string."));
  std::string name = "growActor";
  std::string action = "startMission";
  ActorKey key{*user};
  Array args{type, id};
  auto r = co_await c.actors().call(name, key, action, args);
  log_route(req, *user, id.is_string() ? id.as_string() : "", r);
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(202, *r);
}

Task<AppResponse> drive(AppContext& c, AppRequest req, std::string action) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  const std::string id = req.params["missionId"];
  std::string name = "growActor";
  ActorKey key{*user};
  Array args{id};
  auto r = co_await c.actors().call(name, key, action, args);
  log_route(req, *user, id, r);
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(202, *r);
}

// Stage patches and artifacts go to the mission actor itself (as
// userEventActor's patches do), resolved through growActor's entry.
Task<AppResponse> to_mission(AppContext& c, AppRequest req, std::string action) {
  auto user = co_await authenticate(c, req);
  if (!user.ok()) co_return error_response(user.error());
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  const std::string id = req.params["missionId"];
  Value payload = *body;
  if (action == "applyStagePatch" && str_or(payload, "patchId").empty()) {
    if (auto key = req.header("idempotency-key"); key && !key->empty()) payload["patchId"] = *key;
  }
  std::string grow = "growActor";
  std::string get = "getMission";
  ActorKey grow_key{*user};
  Array get_args{id};
  auto entry = co_await c.actors().call(grow, grow_key, get, get_args);
  if (!entry.ok()) co_return error_response(entry.error());
  const std::string actor = str_or(*entry, "actor");
  if (!find_mission_type_by_actor(actor))
    co_return error_response(make_error("mission", "unknown_type", "Mission `" + id + "` has no registered type."));
  ActorKey mission_key{*user, id};
  Array args{payload};
  auto r = co_await c.actors().call(actor, mission_key, action, args);
  log_route(req, *user, id, r);
  if (!r.ok()) co_return error_response(r.error());
  co_return AppResponse::json(200, *r);
}

}  // namespace

void add_missions(AppDefinition& app) {
  app.actor(interview_to_offer_mission());
  for (const auto& t : mission_types())
    if (!is_custom_mission_type(t.type)) app.actor(thin_mission(t));
  app.actor(grow_actor());
  app.route("GET", "/grow", get_grow);
  app.route("GET", "/missions", get_catalog);
  app.route("POST", "/missions/:missionId/start", start);
  app.route("POST", "/missions/:missionId/pause",
            [](AppContext& c, AppRequest req) {
              std::string action = "pauseMission";
              return drive(c, std::move(req), action);
            });
  app.route("POST", "/missions/:missionId/resume",
            [](AppContext& c, AppRequest req) {
              std::string action = "resumeMission";
              return drive(c, std::move(req), action);
            });
  app.route("POST", "/missions/:missionId/stage",
            [](AppContext& c, AppRequest req) {
              std::string action = "applyStagePatch";
              return to_mission(c, std::move(req), action);
            });
  app.route("POST", "/missions/:missionId/artifacts",
            [](AppContext& c, AppRequest req) {
              std::string action = "addArtifact";
              return to_mission(c, std::move(req), action);
            });
}

}  // namespace anvil::growqr
