#include "actors/growqr/auth/auth.hpp"

#include <chrono>
#include <set>

#include <spdlog/spdlog.h>

#include "actors/growqr/app.hpp"
#include "actors/growqr/mission_registry.hpp"
#include "storage/pg/migrations.hpp"

namespace anvil::growqr {
namespace {

Result<int64_t> millis_setting(const ConfigLookup& config, std::string_view key, int64_t dflt) {
  auto v = setting(config, key);
  if (!v) return dflt;
  try {
    size_t used = 0;
    long long n = std::stoll(*v, &used);
    if (used == v->size() && n >= 0) return static_cast<int64_t>(n);
  } catch (const std::exception&) {
  }
  return make_error("growqr", "invalid_setting", std::string(key) + " must be a number of milliseconds, got `" + *v + "`");
}

std::vector<std::string> split_ids(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',' || c == ' ' || c == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::optional<std::string> bearer(const std::optional<std::string>& header) {
  constexpr std::string_view prefix = "Bearer ";
  if (!header || header->size() <= prefix.size() || header->compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  return header->substr(prefix.size());
}

// Equal in time independent of where the strings differ (both are hashed
// first, so the configured token's length does not leak either).
bool constant_time_equal(std::string_view a, std::string_view b) {
  std::string ha = pg::sha256_hex(a), hb = pg::sha256_hex(b);
  unsigned char diff = 0;
  for (size_t i = 0; i < ha.size(); ++i) diff |= static_cast<unsigned char>(ha[i] ^ hb[i]);
  return diff == 0;
}

Error unauthenticated() {
  return make_error("auth", "unauthenticated",
                    "A session token is required (authorization: Bearer <token>, or connection params { token }).");
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Task<Result<Caller>> identify_for_route(AppContext& app, const AppRequest& req) {
  auto settings = auth_settings(lookup_in(app));
  if (!settings.ok()) co_return settings.error();
  auth::HttpFetch fetch = [&app](net::HttpRequest r) { return app.http(std::move(r)); };
  auto shared = std::make_shared<const AuthSettings>(std::move(*settings));
  auto token = bearer(req.header("authorization"));
  auto dev = req.header("x-user-id");
  co_return co_await identify(std::move(shared), std::move(token), std::move(dev), std::move(fetch));
}

Task<Status> owner_guard(OwnerRule rule, ActorContext& ctx, ClientRequest req) {
  // The node's application configuration, as routes read it (a handful of
  // lookups per client request; the keys are cached per JWKS URL).
  auto parsed = auth_settings([&ctx](std::string_view key) { return ctx.config(key); });
  if (!parsed.ok()) co_return parsed.error();
  auto settings = std::make_shared<const AuthSettings>(std::move(*parsed));
  std::optional<std::string> token, dev;
  if (req.params.is_object()) {
    if (const Value* t = req.params.find("token"); t && t->is_string() && !t->as_string().empty()) token = t->as_string();
    if (const Value* d = req.params.find("devUserId"); d && d->is_string()) dev = d->as_string();
  }
  if (!token) token = bearer(req.header("authorization"));
  if (!dev) dev = req.header("x-dev-user-id");
  auth::HttpFetch fetch = [&ctx](net::HttpRequest r) { return ctx.http(std::move(r)); };
  auth::JoinWait join = [&ctx](Task<Status> t) { return ctx.wait(std::move(t)); };
  auto caller = co_await identify(settings, std::move(token), std::move(dev), std::move(fetch), std::move(join));
  if (!caller.ok()) co_return caller.error();
  if (!caller->verified && caller->user_id.empty()) co_return Ok{};  // development, anonymous
  auto owner = rule.owner(ctx);
  if (!owner || *owner != caller->user_id)
    co_return make_error("auth", "forbidden", "This " + ctx.name() + " belongs to another user.",
                         obj({{"actor", ctx.name()}}));
  // A WebSocket opened with this token is closed when it expires.
  if (caller->valid_until_ms) ctx.client_valid_until(*caller->valid_until_ms);
  co_return Ok{};
}

}  // namespace

Result<AuthSettings> auth_settings(const ConfigLookup& config) {
  AuthSettings s;
  auto env = environment_of(config);
  if (!env.ok()) return env.error();
  s.env = *env;
  auto skew = millis_setting(config, "CLERK_CLOCK_SKEW_MS", 5'000);
  auto ttl = millis_setting(config, "CLERK_JWKS_TTL_MS", 3'600'000);
  auto min_refresh = millis_setting(config, "CLERK_JWKS_MIN_REFRESH_MS", 5'000);
  for (auto* r : {&skew, &ttl, &min_refresh})
    if (!r->ok()) return r->error();
  auto secret = setting(config, "CLERK_SECRET_KEY");
  auto issuer = setting(config, "CLERK_ISSUER");
  std::optional<std::string> url = setting(config, "CLERK_JWKS_URL");
  if (!url && issuer) url = (ends_with(*issuer, "/") ? issuer->substr(0, issuer->size() - 1) : *issuer) +
                            "/.well-known/jwks.json";
  if (!url && secret) url = setting(config, "CLERK_API_URL").value_or("https://api.clerk.com") + "/v1/jwks";
  if (url) {
    auth::JwksSource src;
    src.url = *url;
    // Clerk's Backend API serves the instance's keys to its secret key.
    if (secret && ends_with(*url, "/v1/jwks")) src.bearer = *secret;
    src.ttl = std::chrono::milliseconds(*ttl);
    src.min_refresh = std::chrono::milliseconds(*min_refresh);
    s.jwks = std::move(src);
  }
  s.verify.clock_skew_s = *skew / 1000;
  s.verify.issuer = issuer;
  s.verify.audience = setting(config, "CLERK_AUDIENCE");
  if (auto azp = setting(config, "CLERK_AUTHORIZED_PARTIES")) s.verify.authorized_parties = split_ids(*azp);
  s.service_token = setting(config, {"SERVICE_TOKEN", "GROWQR_SERVICE_TOKEN"});
  if (auto admins = setting(config, "ADMIN_USER_IDS")) s.admins = split_ids(*admins);
  return s;
}

Task<Result<Caller>> identify(std::shared_ptr<const AuthSettings> settings, std::optional<std::string> token,
                              std::optional<std::string> dev_user, auth::HttpFetch fetch, auth::JoinWait join) {
  const bool development = settings->env == Environment::development;
  if (token && settings->jwks) {
    auto cache = auth::JwksCache::for_url(settings->jwks->url);
    auth::VerifyOptions opts = settings->verify;
    opts.now_s = unix_seconds();
    auto claims =
        co_await cache->verify(std::move(*token), *settings->jwks, std::move(opts), std::move(fetch), std::move(join));
    if (!claims.ok()) co_return claims.error();
    Caller caller{claims->find("sub")->as_string(), true, std::nullopt};
    if (const Value* exp = claims->find("exp"); exp && exp->is_number())
      caller.valid_until_ms = (static_cast<int64_t>(exp->as_number()) + settings->verify.clock_skew_s) * 1000;
    co_return caller;
  }
  if (development) co_return Caller{dev_user.value_or(""), false, std::nullopt};  // no Clerk needed in development
  if (token)
    co_return make_error("auth", "not_configured",
                         "Session tokens cannot be verified: no JWKS is configured (CLERK_JWKS_URL, CLERK_ISSUER or "
                         "CLERK_SECRET_KEY).");
  co_return unauthenticated();
}

Task<Result<std::string>> authenticate(AppContext& app, const AppRequest& req) {
  auto caller = co_await identify_for_route(app, req);
  if (!caller.ok()) co_return caller.error();
  if (caller->user_id.empty())
    co_return make_error("auth", "unauthenticated",
                         "A session token (authorization: Bearer <token>) or, in development, x-user-id is required.");
  co_return caller->user_id;
}

bool is_admin(const AuthSettings& s, std::string_view user_id) {
  if (s.admins.empty()) return s.env == Environment::development;
  for (const auto& a : s.admins)
    if (a == user_id) return true;
  return false;
}

Task<Result<std::string>> require_admin(AppContext& app, const AppRequest& req) {
  auto user = co_await authenticate(app, req);
  if (!user.ok()) co_return user.error();
  auto settings = auth_settings(lookup_in(app));
  if (!settings.ok()) co_return settings.error();
  if (!is_admin(*settings, *user))
    co_return make_error("auth", "forbidden",
                         settings->admins.empty() ? "No admins are configured (ADMIN_USER_IDS is empty)."
                                                  : "Admins only.");
  co_return *user;
}

std::optional<AppResponse> check_service_token(const AppContext& app, const AppRequest& req) {
  auto env = environment_of(lookup_in(app));
  const bool development = env.ok() && *env == Environment::development;
  auto token = setting(lookup_in(app), {"SERVICE_TOKEN", "GROWQR_SERVICE_TOKEN"});
  if (!token && development) return std::nullopt;  // token-less ingest: development only (D26)
  auto unauthorized = [] {
    return AppResponse::error(
        make_error("auth", "unauthorized", "A service token is required (authorization: Bearer <token>)."), 401);
  };
  if (!token || (!development && *token == kDevA2aKey)) return unauthorized();
  auto given = bearer(req.header("authorization"));
  if (!given || !constant_time_equal(*given, *token)) return unauthorized();
  return std::nullopt;
}

OwnerRule OwnerRule::key_user(size_t index) {
  return OwnerRule{[index](const ActorContext& ctx) -> std::optional<std::string> {
    const ActorKey& key = ctx.key();
    if (index >= key.size()) return std::nullopt;
    return key[index];
  }};
}

OwnerRule OwnerRule::state_field(std::string field) {
  return OwnerRule{[field = std::move(field)](const ActorContext& ctx) -> std::optional<std::string> {
    const Value& st = ctx.state();
    const Value* v = st.is_object() ? st.find(field) : nullptr;
    if (!v || !v->is_string() || v->as_string().empty()) return std::nullopt;
    return v->as_string();
  }};
}

void require_owner(ActorDefinition& def, OwnerRule rule) {
  def.on_before_connect_async([rule = std::move(rule)](ActorContext& ctx, ClientRequest req) {
    return owner_guard(rule, ctx, std::move(req));
  });
}

void add_auth(AppDefinition& app) {
  // The user-keyed actor types: key [userId] or [userId, ...];
  // conversationActor and workflowRunActor (keys [conversationId] / [runId])
  // answer the owner their create() stored.
  std::set<std::string, std::less<>> user_keyed{"growActor", "userEventActor", "growAgent", "userActor",
                                                "memoryActor", "subAgent", "interviewService",
                                                "roleplayService", "resumeService"};
  for (const auto& t : mission_types()) user_keyed.insert(t.actor);
  for (auto& def : app.actors()) {
    if (def.on_before_connect_async_hook()) continue;  // the part attached its own
    if (user_keyed.count(def.name())) require_owner(def);
    if (def.name() == "conversationActor" || def.name() == "workflowRunActor")
      require_owner(def, OwnerRule::state_field("userId"));
  }

  app.validate([](const AppConfig& config) -> std::vector<std::string> {
    auto s = auth_settings(lookup_in(config));
    if (!s.ok() && s.error().code == "invalid_environment") return {};  // the environment check names it
    if (!s.ok()) return {s.error().message};
    return {};
  });
}

}  // namespace anvil::growqr
