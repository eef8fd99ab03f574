// The /events routes and their service-token rule (docs/growqr.md "Events").
#pragma once

#include <optional>

#include "runtime/app_api.hpp"

namespace anvil::growqr {

// nullopt when the request may proceed, else the 401 to answer. The token
// (config GROWQR_SERVICE_TOKEN) is compared in constant time with
// `authorization: Bearer <token>`. Not required when GROWQR_ENV is
// `development`, or when GROWQR_ENV is unset and no token is configured.
// `admin` marks the replay/DLQ routes (the same token for now).
std::optional<AppResponse> check_service_token(const AppContext& app, const AppRequest& req, bool admin = false);

void add_event_routes(AppDefinition& app);

}  // namespace anvil::growqr
