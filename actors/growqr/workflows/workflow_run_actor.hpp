// workflowRunActor (key [runId]): the ONLY executor of workflow modules
// (seed 000). Routes validate and enqueue commands on its durable queue
// `commands`; its run workflow takes them one at a time:
//   {kind: "runModule", commandId, moduleId, requestKey, url, backoffMs}
//   {kind: "pause" | "resume", commandId}
// A command id seen before is a duplicate and does nothing (D9). A module
// runs at most once per run: mark-running, then one awaiting step that calls
// the product service with the step's stable idempotency key (the same on
// every attempt and after a crash), then one step recording the outcome in
// Postgres (module status, workflow_events, workflow_artifacts insert-or-
// ignore; every write guarded so a re-run records nothing twice).
// Retryable failures (5xx, 429, 408, connect/timeout/reset) add one to
// workflow_run_modules.retry_count per attempt and wait backoffMs * 2^(n-1);
// when retry_count reaches max_retries the module is terminal `failed` and
// the service is not called again. Any other failure (a 4xx) fails at once.
// While paused, runModule commands are deferred and run after resume.
//
// Actions:
//   create(spec)          {userId, definitionId?, modules?, input?, missionInstanceId?,
//                         idempotencyKey}: writes workflow_runs + workflow_run_modules
//                         (insert-or-ignore) and the state; idempotent
//   getStatus()           {runId, userId, status, paused, modules, commands}
//   allocateCommandId()   "cmd-<n>-<run>", n persisted (resumes at n+1 after a restart)
#pragma once

#include "runtime/actor_api.hpp"

namespace anvil::growqr {

ActorDefinition workflow_run_actor();

// The command id of a keyed command: the same for the same run, target and
// client key, so a repeated request gets the same id (D9).
std::string command_id_for(const std::string& run_id, const std::string& target, const std::string& client_key);

}  // namespace anvil::growqr
