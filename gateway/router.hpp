// Everything a request goes through before it reaches an actor or the
// manager API: base path (`/` and `/api/rivet/`), CORS, ray ids, tokens
// (access.hpp; application routes are not the gateway's to guard), and the
// split between manager routes and actor-gateway routes.
#pragma once

#include <string>

#include "engine-api/http.hpp"
#include "engine-api/manager_api.hpp"
#include "gateway/access.hpp"
#include "gateway/actor_routes.hpp"
#include "runtime/app_host.hpp"
#include "runtime/runtime.hpp"

namespace anvil::gateway {

class Router {
 public:
  // `apps`: the enabled applications' routes (may be null), served at the
  // root ahead of the manager API; /api/rivet/* is always Rivet's.
  // `access`: the token checks (null: everything open).
  Router(Runtime& rt, ManagerApi& api, ActorRoutes& actors, AppHost* apps = nullptr,
         const AccessGuard* access = nullptr)
      : rt_(rt), api_(api), actors_(actors), apps_(apps), access_(access) {
    actors_.set_access(access);
  }
  asio::awaitable<http::Response> handle(http::Request req);

  // "/api/rivet/actors" => "/actors"; "/actors" => "/actors".
  static std::string_view strip_base(std::string_view path);

 private:
  Runtime& rt_;
  ManagerApi& api_;
  ActorRoutes& actors_;
  AppHost* apps_;
  const AccessGuard* access_;
};

}  // namespace anvil::gateway
