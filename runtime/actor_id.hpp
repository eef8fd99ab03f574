// Actor ids: 25 lowercase base36 characters from 128 random bits. Fixed
// width, so every storage key of one actor shares a fixed-size prefix; URL-
// and WebSocket-subprotocol-safe.
#pragma once

#include <string>
#include <string_view>

namespace anvil {

constexpr size_t kActorIdLength = 25;
std::string new_actor_id();
bool is_valid_actor_id(std::string_view id);

// A per-actor inspector token (the Bearer token of the actor's
// /inspector/* routes): 256 bits from the OS's random source
// (getrandom(2)), as 64 lowercase hex characters.
std::string new_inspector_token();

}  // namespace anvil
