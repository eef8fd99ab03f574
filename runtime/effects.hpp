// Runtime-internal: what a turn leaves for the runtime to do once its commit
// is durable (the parts of TurnEffects), and what an async call ends with.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/runtime.hpp"

namespace anvil {

// A schedule to arm once its record is durable.
struct Alarm {
  std::string schedule_id;
  int64_t due_ts = 0;
};

// An actor-to-actor message, dispatched after the sending turn commits.
struct OutboxMessage {
  std::string name;
  ActorKey key;
  bool is_call = false;
  std::string queue_or_action;
  Value payload;  // queue body, or call args (array)
  std::string reply_to;
  std::string from_actor_id;
  std::string from_name;  // the sender's type and key: the callee's caller_actor()
  ActorKey from_key;
};

// What an asynchronous call ended with, and the commit covering its last turn.
struct AsyncOutcome {
  Result<Value> output;
  uint64_t seq = 0;
  std::optional<RawResponse> response;  // onRequest
};

}  // namespace anvil
