// GrowQR authentication (docs/growqr.md "Authentication"): Clerk session
// tokens verified natively (jwt.hpp, jwks.hpp), the caller of a route, the
// owner rule of user-keyed actors, the service token and the admin list.
//
// Errors (group `auth`): unauthenticated (401, no credentials), the token
// errors of jwt.hpp (401), forbidden (403: a known caller without the right),
// not_configured (503: a token cannot be verified because no JWKS is
// configured), jwks_unavailable (503).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/growqr/auth/jwks.hpp"
#include "actors/growqr/env/environment.hpp"
#include "runtime/app_api.hpp"

namespace anvil::growqr {

// What the auth code reads from the configuration (keys in docs/growqr.md).
struct AuthSettings {
  Environment env = Environment::development;
  std::optional<auth::JwksSource> jwks;  // nullopt: no Clerk configured
  auth::VerifyOptions verify;            // issuer, audience, azp, clock skew (now_s set per call)
  std::optional<std::string> service_token;
  std::vector<std::string> admins;       // ADMIN_USER_IDS
};
Result<AuthSettings> auth_settings(const ConfigLookup& config);

// Who is calling.
struct Caller {
  std::string user_id;    // the token's `sub`, or the development identity ("" = anonymous)
  bool verified = false;  // false: a development identity, never outside development
  // Until when the token is accepted (its exp plus the allowed clock skew),
  // unix ms; none for a development identity or a token without exp.
  std::optional<int64_t> valid_until_ms;
};

// The caller from a session token (when given) or, in development only, a
// development identity (`dev_user`, may be empty). Outside development a
// missing token is auth.unauthenticated.
Task<Result<Caller>> identify(std::shared_ptr<const AuthSettings> settings, std::optional<std::string> token,
                              std::optional<std::string> dev_user, auth::HttpFetch fetch,
                              auth::JoinWait join = nullptr);

// ---- routes ----

// The verified user id of a route's caller: `authorization: Bearer <Clerk
// session token>`. In development without a token, the `x-user-id` header
// (the development identity of routes). 401/503 errors as above.
Task<Result<std::string>> authenticate(AppContext& app, const AppRequest& req);
// authenticate, then the caller must be in ADMIN_USER_IDS (403 otherwise).
// An empty list refuses everyone outside development (D28); in development
// an empty list admits every authenticated caller.
Task<Result<std::string>> require_admin(AppContext& app, const AppRequest& req);
bool is_admin(const AuthSettings& s, std::string_view user_id);
// Service-to-service calls (ingest): nullopt when the request may proceed,
// else the 401 to answer. `authorization: Bearer <SERVICE_TOKEN>`, compared
// in constant time. Without a configured token only development is open
// (token-less ingest is refused elsewhere, D26); the `dev-a2a-key` fallback
// is refused outside development even when configured.
std::optional<AppResponse> check_service_token(const AppContext& app, const AppRequest& req);

// ---- actors ----

// Whom a user-keyed actor answers to.
struct OwnerRule {
  // The owner's user id, from the actor's key or state; nullopt: nobody (yet).
  std::function<std::optional<std::string>(const ActorContext&)> owner;
  // key[index] (GrowQR actors are keyed [userId] or [userId, ...]).
  static OwnerRule key_user(size_t index = 0);
  // A string field of the state (e.g. conversationActor's stored owner).
  static OwnerRule state_field(std::string field);
};

// Makes `def` answer only its owner: installs an on_before_connect_async
// guard that identifies the client (session token in the connection params
// `{ token }` or the `authorization: Bearer` header; in development the
// params' `devUserId` or the `x-dev-user-id` header, or nobody) and refuses
// anyone but the owner (auth.forbidden, 403). In development an anonymous
// client is let through. The node's own calls (routes, other actors) are
// not checked (see on_before_connect_async).
void require_owner(ActorDefinition& def, OwnerRule rule = OwnerRule::key_user());

// add_auth(app) (app.hpp) adds the settings' startup check and attaches
// require_owner to part 1's user-keyed actor types.

}  // namespace anvil::growqr
