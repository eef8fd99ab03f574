// The /events routes and their service-token rule (docs/growqr.md "Events").
#pragma once

#include <optional>

#include "runtime/app_api.hpp"

namespace anvil::growqr {

// Every route requires the service token (check_service_token, auth/auth.hpp).
void add_event_routes(AppDefinition& app);

}  // namespace anvil::growqr
