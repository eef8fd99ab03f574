// GrowQR's environments (seed 003, D24–D29; docs/growqr.md "Environments"):
// one explicit environment decides behaviour, and production-like ones fail
// fast at start on every missing or unsafe setting.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/app_api.hpp"

namespace anvil::growqr {

enum class Environment { development, test, staging, demo, production };

std::string_view environment_name(Environment e);

// A configuration lookup (AppContext::config or an AppConfig).
using ConfigLookup = std::function<std::optional<std::string>(std::string_view)>;
ConfigLookup lookup_in(const AppConfig& config);
ConfigLookup lookup_in(const AppContext& app);
// The value when set and non-empty.
std::optional<std::string> setting(const ConfigLookup& config, std::string_view key);
// The first of `keys` that is set and non-empty (a name and its aliases).
std::optional<std::string> setting(const ConfigLookup& config, std::initializer_list<std::string_view> keys);

// APP_ENV, else GROWQR_ENV, else development. NODE_ENV never counts (D29).
// An unknown value is growqr.invalid_environment.
Result<Environment> environment_of(const ConfigLookup& config);

// Dev fallbacks that must not be used outside development (D26).
inline constexpr std::string_view kDevA2aKey = "dev-a2a-key";
inline constexpr std::string_view kDevGiteaAdminPassword = "growqr-admin-dev";

// Whether a URL's host is local: localhost (and *.localhost), 127.0.0.0/8,
// ::1, 0.0.0.0 or host.docker.internal (D25).
bool is_local_url(std::string_view url);

// The product services whose `<NAME>_SERVICE_URL` is required outside
// development: GROWQR_SERVICES (comma-separated; "none" for none), default
// interview,roleplay,resume (the service actors').
std::vector<std::string> enabled_services(const ConfigLookup& config);

// Every problem that keeps a node from starting in its environment (the
// matrix in docs/growqr.md), one line each naming the setting. Empty: fine.
// Takes the whole configuration: every URL-like setting is checked (D25).
std::vector<std::string> check_environment(const AppConfig& config);

// D27: whether /home/seed-demo may run. Production: never (growqr.demo_disabled,
// 403). Staging and demo: DEMO_DATA_ENABLED=true and an admin caller.
// Development and test: allowed.
Status demo_seed_allowed(const ConfigLookup& config, bool caller_is_admin);

}  // namespace anvil::growqr
