// conversationActor [conversationId] (seed 000): one conversation's turns and
// messages, its streaming state and its mission. A message is answered once
// per message id: a repeated send returns the first result (seed 000's
// "needs documented idempotency per turn/message id"). Mirrored to Postgres
// (grow_conversations, messages) for listings.
#pragma once

#include "runtime/app_api.hpp"

namespace anvil::growqr {

ActorDefinition conversation_actor();

}  // namespace anvil::growqr
