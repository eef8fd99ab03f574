// GrowQR on Anvil: the application's actor types, routes, services and
// shared tables (docs/growqr.md). Enabled with `anvil serve --app growqr`.
#pragma once

#include "runtime/app_api.hpp"

namespace anvil::growqr {

// The whole application.
AppDefinition app();

// Each part adds its actors, routes and services (one file group each).
void add_events(AppDefinition& app);     // events/: ingestion, userEventActor, projectors, DLQ, replay
void add_missions(AppDefinition& app);   // missions/: registry, growActor, mission actors, /grow, /missions
void add_workflows(AppDefinition& app);  // workflows/: workflowRunActor, /workflow-runs
void add_environment(AppDefinition& app);  // env/: APP_ENV, startup checks (seed 003), /home/seed-demo
// auth/: configures authentication from the node's configuration and makes
// the user-keyed actor types already added answer only their owner; call it
// after the parts that add actors.
void add_auth(AppDefinition& app);

}  // namespace anvil::growqr
