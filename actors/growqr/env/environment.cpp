#include "actors/growqr/env/environment.hpp"

#include <algorithm>
#include <cctype>

namespace anvil::growqr {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The host of a URL (scheme://[user@]host[:port]/...), of a libpq key=value
// string (host=...), or of a bare host[:port].
std::string host_of(std::string_view url) {
  std::string_view rest = url;
  if (auto scheme = rest.find("://"); scheme != std::string_view::npos) {
    rest.remove_prefix(scheme + 3);
  } else if (auto h = rest.find("host="); h != std::string_view::npos) {
    rest.remove_prefix(h + 5);
    return lower(rest.substr(0, rest.find_first_of(" \t")));
  }
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.front() == '[') return lower(rest.substr(1, rest.find(']') - 1));
  return lower(rest.substr(0, rest.find(':')));
}

// Keys whose values are URLs or hosts the node or its clients reach.
bool is_url_key(std::string_view key) {
  return ends_with(key, "_URL") || ends_with(key, "_ORIGIN") || ends_with(key, "_ENDPOINT") ||
         key == "CLERK_ISSUER" || key == "USER_CONTAINER_HOST";
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string_view item = s.substr(start, comma == std::string_view::npos ? s.npos : comma - start);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.remove_prefix(1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::string_view environment_name(Environment e) {
  switch (e) {
    case Environment::development: return "development";
    case Environment::test: return "test";
    case Environment::staging: return "staging";
    case Environment::demo: return "demo";
    case Environment::production: return "production";
  }
  return "development";
}

ConfigLookup lookup_in(const AppConfig& config) {
  return [&config](std::string_view key) -> std::optional<std::string> {
    auto it = config.find(std::string(key));
    if (it == config.end()) return std::nullopt;
    return it->second;
  };
}

ConfigLookup lookup_in(const AppContext& app) {
  return [&app](std::string_view key) { return app.config(key); };
}

std::optional<std::string> setting(const ConfigLookup& config, std::string_view key) {
  auto v = config(key);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

std::optional<std::string> setting(const ConfigLookup& config, std::initializer_list<std::string_view> keys) {
  for (auto k : keys)
    if (auto v = setting(config, k)) return v;
  return std::nullopt;
}

Result<Environment> environment_of(const ConfigLookup& config) {
  auto v = setting(config, {"APP_ENV", "GROWQR_ENV"});
  if (!v) return Environment::development;
  for (auto e : {Environment::development, Environment::test, Environment::staging, Environment::demo,
                 Environment::production})
    if (*v == environment_name(e)) return e;
  return make_error("growqr", "invalid_environment",
                    "APP_ENV/GROWQR_ENV is `" + *v + "`; expected development, test, staging, demo or production.");
}

bool is_local_url(std::string_view url) {
  std::string host = host_of(url);
  if (host.empty()) return false;
  return host == "localhost" || ends_with(host, ".localhost") || host.rfind("127.", 0) == 0 || host == "::1" ||
         host == "0.0.0.0" || host == "host.docker.internal";
}

std::vector<std::string> enabled_services(const ConfigLookup& config) {
  auto v = config("GROWQR_SERVICES");
  if (!v) return {"interview", "roleplay", "resume"};
  if (*v == "none") return {};
  return split_list(*v);
}

std::vector<std::string> check_environment(const AppConfig& all) {
  const ConfigLookup config = lookup_in(all);
  std::vector<std::string> problems;
  auto env = environment_of(config);
  if (!env.ok()) return {env.error().message};
  if (*env == Environment::development) return problems;
  const std::string name(environment_name(*env));

  // D26: dev fallbacks are refused everywhere but development.
  if (auto t = setting(config, {"SERVICE_TOKEN", "GROWQR_SERVICE_TOKEN"}); t && *t == kDevA2aKey)
    problems.push_back("SERVICE_TOKEN is the development fallback `dev-a2a-key`, refused in " + name);
  if (auto k = setting(config, "A2A_ALLOWED_KEY"); k && *k == kDevA2aKey)
    problems.push_back("A2A_ALLOWED_KEY is the development fallback `dev-a2a-key`, refused in " + name);
  if (auto p = setting(config, "GITEA_ADMIN_PASSWORD"); p && *p == kDevGiteaAdminPassword)
    problems.push_back("GITEA_ADMIN_PASSWORD is the development default `growqr-admin-dev`, refused in " + name);
  if (*env == Environment::test) return problems;

  // D24: staging, demo and production need every secret and endpoint.
  auto require = [&](std::initializer_list<std::string_view> keys, const std::string& what) {
    if (!setting(config, keys)) problems.push_back(what + " is required in " + name);
  };
  // The node's own Postgres URL (`anvil serve` puts the one in use here);
  // DATABASE_URL alone is not read by the node, so it does not count.
  require({"ANVIL_POSTGRES_URL"}, "the database URL (--postgres-url or ANVIL_POSTGRES_URL; DATABASE_URL is not read)");
  require({"CLERK_SECRET_KEY"}, "CLERK_SECRET_KEY");
  require({"SERVICE_TOKEN", "GROWQR_SERVICE_TOKEN"}, "SERVICE_TOKEN");
  require({"FRONTEND_ORIGIN"}, "FRONTEND_ORIGIN");
  require({"GITEA_TOKEN", "GITEA_ADMIN_TOKEN"}, "GITEA_TOKEN");
  for (const auto& svc : enabled_services(config)) {
    std::string key;
    for (char c : svc) key += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    key += "_SERVICE_URL";
    if (!setting(config, key)) problems.push_back(key + " is required in " + name + " (service `" + svc +
                                                  "` is enabled; GROWQR_SERVICES lists the enabled services)");
  }
  // The process sandbox provider runs users' runtimes as processes of the
  // node's host: development and test only.
  if (auto provider = setting(config, "SANDBOX_PROVIDER"); provider && *provider == "process")
    problems.push_back("SANDBOX_PROVIDER=process runs users' runtimes on the node's host; refused in " + name +
                       " (use docker)");
  // D29: a pinned OpenCode image.
  if (auto img = setting(config, "OPENCODE_IMAGE")) {
    auto colon = img->rfind(':');
    bool tagged = colon != std::string::npos && img->find('/', colon) == std::string::npos;
    std::string tag = tagged ? img->substr(colon + 1) : "";
    if (img->find('@') == std::string::npos && (!tagged || tag == "latest" || tag == "dev"))
      problems.push_back("OPENCODE_IMAGE `" + *img + "` is not pinned (a release tag or digest) in " + name);
  }

  // D25: nothing may point at this host (a local demo may opt out).
  const bool local_demo = *env == Environment::demo && config("DEMO_LOCAL") == "true";
  if (!local_demo) {
    // Every setting named like a URL (…_URL, …_ORIGIN, …_ENDPOINT,
    // CLERK_ISSUER, USER_CONTAINER_HOST), so later parts' settings are covered too.
    for (const auto& [k, v] : all)
      if (is_url_key(k) && !v.empty() && is_local_url(v))
        problems.push_back(k + " points at this host (" + v + "), refused in " + name);
  }
  return problems;
}

Status demo_seed_allowed(const ConfigLookup& config, bool caller_is_admin) {
  auto env = environment_of(config);
  if (!env.ok()) return env.error();
  if (*env == Environment::production)
    return make_error("auth", "forbidden", "Demo data cannot be seeded in production.",
                      obj({{"reason", "production"}}));
  if (*env == Environment::staging || *env == Environment::demo) {
    if (config("DEMO_DATA_ENABLED") != "true")
      return make_error("auth", "forbidden", "Demo data is disabled (DEMO_DATA_ENABLED is not true).",
                        obj({{"reason", "demo_data_disabled"}}));
    if (!caller_is_admin)
      return make_error("auth", "forbidden", "Only an admin may seed demo data.", obj({{"reason", "not_admin"}}));
  }
  return Ok{};
}

}  // namespace anvil::growqr
