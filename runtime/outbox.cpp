// Actor-to-actor messages: dispatched once the sending turn is durable,
// delivered as a queue send or an action call (with an optional reply
// action on the sender).
#include <spdlog/spdlog.h>

#include "runtime/core.hpp"

namespace anvil {

void RuntimeCore::dispatch(OutboxMessage msg) { asio::co_spawn(io_, deliver(std::move(msg)), asio::detached); }

asio::awaitable<void> RuntimeCore::deliver(OutboxMessage msg) {
  CreateRequest cr;
  cr.name = msg.name;
  cr.key = msg.key;
  cr.creator = msg.from_name;
  auto target = get_or_create(cr, false);
  Result<Value> result = Value();
  if (!target.ok()) {
    result = target.error();
  } else {
    Status st = co_await durable(target->seq);
    if (!st.ok()) {
      result = st.error();
    } else if (msg.is_call) {
      Array args = msg.payload.is_array() ? msg.payload.as_array() : Array{};
      // Named, not a temporary in the co_await (GCC 12 frees such a temporary twice).
      std::optional<CallerActor> caller = CallerActor{msg.from_actor_id, msg.from_name, msg.from_key};
      Value no_params;
      CallResult called =
          co_await call_action(target->info.actor_id, msg.queue_or_action, std::move(args), std::move(no_params),
                               std::move(caller));
      result = std::move(called.output);
    } else {
      Result<QueueSendOutcome> sent = co_await queue_send(target->info.actor_id, msg.queue_or_action, msg.payload, false, 0);
      if (!sent.ok()) result = sent.error();
    }
  }
  if (!result.ok())
    spdlog::warn("actor {}: message to {} ({}) failed: {}", msg.from_actor_id, msg.name, msg.queue_or_action,
                 result.error().qualified());
  if (msg.is_call && !msg.reply_to.empty()) {
    Value reply;
    if (result.ok()) {
      reply = obj({{"ok", true}, {"output", *result}});
    } else {
      reply = obj({{"ok", false},
                   {"error", obj({{"group", result.error().group},
                                  {"code", result.error().code},
                                  {"message", result.error().message}})}});
    }
    Array reply_args;
    reply_args.push_back(std::move(reply));
    CallResult done = co_await call_action(msg.from_actor_id, msg.reply_to, std::move(reply_args), Value());
    if (!done.output.ok())
      spdlog::warn("actor {}: reply action {} failed: {}", msg.from_actor_id, msg.reply_to,
                   done.output.error().qualified());
  }
}

}  // namespace anvil
