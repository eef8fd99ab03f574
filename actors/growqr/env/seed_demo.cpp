// add_environment: the startup checks of seed 003 and the demo seeding
// route they gate (docs/growqr.md "Environments").
//
//   POST /home/seed-demo   body {userId?} (another user: admins only);
//                          starts the demo missions on the user's growActor.
//                          403 in production always; in staging and demo
//                          DEMO_DATA_ENABLED=true and an admin caller (D27).
#include <spdlog/spdlog.h>

#include "actors/growqr/app.hpp"
#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/env/environment.hpp"
#include "actors/growqr/missions/app_util.hpp"

namespace anvil::growqr {
namespace {

// The missions a demo account starts with.
constexpr std::string_view kDemoMissions[] = {"interview-to-offer", "resume-boost"};

Task<AppResponse> seed_demo(AppContext& app, AppRequest req) {
  auto caller = co_await authenticate(app, req);
  if (!caller.ok()) co_return AppResponse::error(caller.error());
  auto settings = auth_settings(lookup_in(app));
  if (!settings.ok()) co_return AppResponse::error(settings.error());
  const bool admin = is_admin(*settings, *caller);
  if (auto allowed = demo_seed_allowed(lookup_in(app), admin); !allowed.ok())
    co_return AppResponse::error(allowed.error());
  auto body = json_body(req);
  if (!body.ok()) co_return error_response(body.error());
  std::string user = str_or(*body, "userId", *caller);
  if (user != *caller && !admin)
    co_return AppResponse::error(make_error("auth", "forbidden", "Only an admin may seed another user's demo data."));

  Array started;
  for (std::string_view type : kDemoMissions) {
    std::string name = "growActor";
    std::string action = "startMission";
    ActorKey key{user};
    Array args{std::string(type), Value(nullptr)};
    auto r = co_await app.actors().call(name, key, action, args);
    if (!r.ok()) co_return error_response(r.error());
    started.push_back(*r);
  }
  spdlog::info("home: demo data seeded requestId={} userId={} by={}", req.request_id, user, *caller);
  co_return AppResponse::json(201, obj({{"userId", user}, {"missions", started}}));
}

}  // namespace

void add_environment(AppDefinition& app) {
  app.validate([](const AppConfig& config) { return check_environment(config); });
  app.route("POST", "/home/seed-demo", seed_demo);
}

}  // namespace anvil::growqr
