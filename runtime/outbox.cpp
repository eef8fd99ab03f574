// Actor-to-actor messages: dispatched once the sending turn is durable,
// delivered as a queue send or an action call (with an optional reply
// action on the sender).
#include <spdlog/spdlog.h>

#include "runtime/core.hpp"

namespace anvil {

namespace {

// Sender id, target type and serialized target key.
std::string lane_of(const OutboxMessage& m) {
  std::string lane = m.from_actor_id;
  lane += '\0';
  lane += m.name;
  lane += '\0';
  lane += serialize_key(m.key);
  return lane;
}

}  // namespace

void RuntimeCore::dispatch(OutboxMessage msg) {
  std::string lane = lane_of(msg);
  {
    std::lock_guard lock(lanes_mu_);
    auto [it, idle] = lanes_.try_emplace(lane);
    if (!idle) {
      it->second.push_back(std::move(msg));
      return;
    }
  }
  asio::co_spawn(io_, drain_lane(std::move(lane), std::move(msg)), asio::detached);
}

asio::awaitable<void> RuntimeCore::drain_lane(std::string lane, OutboxMessage first) {
  std::optional<OutboxMessage> next = std::move(first);
  while (next) {
    OutboxMessage msg = std::move(*next);
    next.reset();
    co_await deliver(std::move(msg));
    std::lock_guard lock(lanes_mu_);
    auto it = lanes_.find(lane);
    if (it == lanes_.end()) break;
    if (it->second.empty()) {
      lanes_.erase(it);
    } else {
      next = std::move(it->second.front());
      it->second.pop_front();
    }
  }
}

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
  stats.actor_messages.with({result.ok() ? "ok" : "error"}).inc();
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
