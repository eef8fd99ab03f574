// Example actors, one per authoring feature not already shown by the
// fixtures (see docs/authoring.md).
#pragma once

#include "runtime/actor_api.hpp"

namespace anvil::actors {

ActorDefinition ledger_actor();  // KV API + vars
void register_examples(Registry& registry);

}  // namespace anvil::actors
