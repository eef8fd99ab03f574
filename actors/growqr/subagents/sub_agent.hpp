// subAgent (key [userId, subAgentId]): one worker session in the user's
// OpenCode runtime (seed 001's "workers"), provisioned through the sandbox
// provider. The owning growAgent [userId] hears its progress through
// onSubAgentProgress({subAgentId, sessionId, parent, type, data}) (fire and
// forget), and its own connections get the same as event `progress`.
//
// Actions:
//   start({task, parent?}) or start(task)
//       -> {subAgentId, sessionId, status, duplicate}
//       Provisions the runtime, finds or creates the OpenCode session (title
//       "growqr subAgent <subAgentId>", so a crash between POST /session and
//       its record reuses the session), records it in `opencode_sessions`,
//       and returns; the prompt is sent by `sendPrompt` in the background.
//       A second start returns the first one's answer (duplicate: true).
//   cancel()     -> status; aborts the OpenCode session (best effort)
//   getStatus()  -> {subAgentId, userId, sessionId, status, task, result, error,
//                    progressCount, opencodeUrl, promptSent}
//   follow(), sendPrompt(), drive(): background, scheduled by start and a
//       5 s watchdog (`drive`) that restarts whichever is not running in this
//       generation (after a crash or a dropped event stream).
//
// The prompt reaches OpenCode once (D14): only one sendPrompt runs per
// generation, and before every POST /session/:id/message it reads the
// session's messages and sends nothing when a user message is already there
// (sent by an earlier start, retry or generation). The POST itself is never
// retried blindly (one attempt; a failure is re-checked the same way).
//
// Status: starting -> running -> completed | failed | cancelled. `completed`
// carries the assistant's final text as `result`.
#pragma once

#include "runtime/actor_api.hpp"
#include "runtime/app_api.hpp"

namespace anvil::growqr {

ActorDefinition sub_agent_actor();

}  // namespace anvil::growqr
