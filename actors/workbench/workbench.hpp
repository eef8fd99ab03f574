// The workbench on Anvil (seed 004, docs/workbench.md): a tree of
// coordinators with local SQLite index tables, children that push changes
// up to their direct coordinator, per-user state on the user's actor.
// Enabled with `anvil serve --app workbench`.
//
//   organization [orgId]                       coordinator: repos, task lookup, summaries, auth indexes
//   ├─ history [orgId]                         the organization's audit feed
//   ├─ githubData [orgId]                      GitHub API cache (API reads + signed webhooks)
//   ├─ authUser [orgId, userId]                per-user UI state: tabs, unread, drafts, attachments
//   └─ repository [orgId, repoId]              coordinator: task index (taskId -> branch)
//      └─ task [orgId, repoId, taskId]         one task = one branch; coordinator for sessions + sandboxes
//         ├─ taskSession [orgId, repoId, taskId, sessionId]         transcript, model, runtime status
//         │  └─ sessionStatusSync [orgId, repoId, taskId, sessionId]  0..1: polls the runtime status
//         └─ sandboxInstance [orgId, providerId, sandboxId]         a sandbox; executeInSandbox
#pragma once

#include "runtime/app_api.hpp"

namespace anvil::workbench {

AppDefinition app();

ActorDefinition organization_actor();
ActorDefinition history_actor();
ActorDefinition github_data_actor();
ActorDefinition auth_user_actor();
ActorDefinition repository_actor();
ActorDefinition task_actor();
ActorDefinition task_session_actor();
ActorDefinition session_status_sync_actor();
ActorDefinition sandbox_instance_actor();

// POST /webhooks/github/:orgId (signed with GITHUB_WEBHOOK_SECRET).
void add_routes(AppDefinition& app);

}  // namespace anvil::workbench
