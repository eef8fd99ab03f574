// Actor ids: lowercase base36, of one fixed width per data directory, so
// every storage key of one actor shares a fixed-size prefix; URL- and
// WebSocket-subprotocol-safe. A single node makes its own ids: 25 characters
// from 128 random bits. Under a Rivet Engine (envoy mode, docs/envoy.md) the
// engine names actors, with 30 characters; the width is then 30 and is kept
// in the data directory (runtime/runtime.cpp checks it at open).
#pragma once

#include <string>
#include <string_view>

namespace anvil {

constexpr size_t kActorIdLength = 25;        // a single node's ids
constexpr size_t kEngineActorIdLength = 30;  // a Rivet Engine's ids
// The width of every actor id of this process (kActorIdLength unless set).
// Set once at startup, before any actor is created or read.
size_t actor_id_length();
void set_actor_id_length(size_t n);
// 128 random bits, zero-padded to actor_id_length().
std::string new_actor_id();
bool is_valid_actor_id(std::string_view id);

// A per-actor inspector token (the Bearer token of the actor's
// /inspector/* routes): 256 bits from the OS's random source
// (getrandom(2)), as 64 lowercase hex characters.
std::string new_inspector_token();

}  // namespace anvil
