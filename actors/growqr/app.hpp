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
void add_agent(AppDefinition& app);      // agent/: growAgent (LLM tool loop), userActor facade, /api/chat
void add_conversations(AppDefinition& app);  // conversations/: conversationActor, /conversations
void add_home(AppDefinition& app);       // home/: /home, /users, /agents, /git (portal routes)
void add_memory(AppDefinition& app);     // memory/: memoryActor (L1 state, L2 session_memory, L3 git via Gitea)
void add_subagents(AppDefinition& app);  // subagents/ + sandbox/: subAgent over the user's OpenCode runtime
void add_services(AppDefinition& app);   // services/: interviewService, roleplayService, resumeService, /services
void add_service_routes(AppDefinition& app);  // services/routes.cpp (called by add_services)
void add_environment(AppDefinition& app);  // env/: APP_ENV, startup checks (seed 003), /home/seed-demo
// auth/: the auth settings' startup check, and ownership (require_owner) for
// the user-keyed actor types already added; call it after the parts that add actors.
void add_auth(AppDefinition& app);

}  // namespace anvil::growqr
