// Actor keys (actor-model.md §1.2, client-protocol.md §2.6): string arrays
// with rivetkit's exact serialized form, which is also the index key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/value/error.hpp"

namespace anvil {

using ActorKey = std::vector<std::string>;

// [] => "/"; "" component => "\0"; '\' => "\\", '/' => "\/"; joined by '/'.
std::string serialize_key(const ActorKey& key);
ActorKey deserialize_key(std::string_view s);
// The gateway's rvt-key form: components joined by ',' without escaping;
// empty => [] (the engine's lossy split, client-protocol.md §3.2).
ActorKey split_query_key(std::string_view s);

// Limits: 128 bytes per component, 1024 bytes serialized => actor.key_too_large.
Status validate_key(const ActorKey& key);

}  // namespace anvil
