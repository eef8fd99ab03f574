// Who may do what (operator-guide.md, "Security"). Two tokens, both
// optional, both compared in constant time:
//  - the client token (`--token` / ANVIL_TOKEN) guards the manager API and
//    the actor gateway, as Rivet's engine does with its token: a request
//    presents it as `Authorization: Bearer <t>`, `x-rivet-token: <t>`,
//    `/gateway/<id>@<t>/…`, `rvt-token=<t>` or the `rivet_token.<t>`
//    WebSocket subprotocol (the forms the rivetkit client sends), and is
//    refused 403 `api.forbidden` without it (a WebSocket: accepted, then
//    closed 1011 `api.forbidden`). `GET /metadata` and `GET /health`
//    stay open (the engine skips auth there too), CORS preflights carry no credentials and
//    application routes (AppHost) do their own auth.
//  - the admin token (`--admin-token` / ANVIL_ADMIN_TOKEN) guards the
//    operator endpoints (`/metrics`, `GET /actors/{id}/workflow`, everything
//    under `/admin/`: `GET /admin/actors`, `GET /admin/actors/{id}`), presented
//    as `Authorization: Bearer <t>`. With no admin token configured those
//    endpoints answer only peers on this host that did not come through a
//    proxy (no Forwarded / X-Forwarded-For / X-Real-IP header). The admin
//    token also passes wherever the client token does.
//  - an actor's inspector routes (`/gateway/{id}/inspector/…`) take neither
//    token here: they want `Authorization: Bearer` with the actor's own
//    inspector token or the admin token (gateway/inspector_routes.hpp);
//    addressed by name and key (which may create the actor) they need the
//    client token too.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine-api/http.hpp"

namespace anvil::gateway {

struct AccessOptions {
  std::string token;        // "" = the manager API and gateway are open
  std::string admin_token;  // "" = admin endpoints for local, unproxied peers only
};

// Inspector: an actor's /inspector/* routes (gateway/inspector_routes.hpp),
// which check the actor's inspector token (or the admin token) themselves.
enum class RouteAccess { Public, Client, Admin, Inspector };

// The access a request needs, from its method and base-stripped path (actor
// gateway routes are Client).
// `query`: the raw query; an inspector path addressed by name and key
// (`rvt-…` parameters, which may create the actor) needs the client token
// like any other gateway request.
RouteAccess route_access(std::string_view method, std::string_view path, bool is_actor_route,
                         std::string_view query = {});

// Every token the request presents, in any of the forms above. `path` is
// the base-stripped path.
std::vector<std::string> presented_tokens(const http::Request& req, std::string_view path);

// The token of an `Authorization: Bearer <t>` header (the scheme in any
// case, as RFC 7235 has it), or nullopt.
std::optional<std::string_view> bearer_token(const http::Request& req);

// Byte-wise equality whose time depends on the lengths only.
bool constant_time_equal(std::string_view a, std::string_view b);

class AccessGuard {
 public:
  explicit AccessGuard(AccessOptions opts) : opts_(std::move(opts)) {}

  // nullopt when the request may proceed; else the error to answer (403).
  std::optional<Error> check(RouteAccess access, const http::Request& req, std::string_view path) const;

  bool client_token_required() const { return !opts_.token.empty(); }
  // Whether `token` is the admin token (false when none is configured);
  // constant time.
  bool is_admin_token(std::string_view token) const {
    return !opts_.admin_token.empty() && constant_time_equal(token, opts_.admin_token);
  }
  bool admin_token_configured() const { return !opts_.admin_token.empty(); }

  static Error forbidden();

 private:
  bool presents(const std::string& expected, const std::vector<std::string>& tokens) const;

  AccessOptions opts_;
};

}  // namespace anvil::gateway
