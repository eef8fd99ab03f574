// growAgent [userId] (seed 001: "one master per user"): the user's LLM agent.
// `chat(text)` runs an Anthropic tool-use loop to its end and answers
// { reply, toolCalls }; the loop runs in the actor's workflow, so a kill -9
// mid-loop resumes where it stopped without re-running completed tool calls.
// userActor [userId] (seed 000) is the thin compatible facade over the split
// actors (growAgent, memoryActor, workflowRunActor).
#pragma once

#include "runtime/app_api.hpp"

namespace anvil::growqr {

ActorDefinition grow_agent();
ActorDefinition user_actor();

// The tools the model may call, as the Messages API's `tools` array.
Value agent_tool_specs();

}  // namespace anvil::growqr
