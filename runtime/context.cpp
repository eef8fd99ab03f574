#include "runtime/actor_api.hpp"
#include "runtime/instance.hpp"

namespace anvil {

const std::string& ActorContext::actor_id() const { return core_.actor_id; }
const std::string& ActorContext::name() const { return core_.name; }
const ActorKey& ActorContext::key() const { return core_.key; }
const Value& ActorContext::state() const { return core_.state; }

Value& ActorContext::mutate_state() {
  core_.dirty = true;
  return core_.state;
}

void ActorContext::broadcast(const std::string& name, Array args) {
  if (!core_.conns) return;
  for (const auto& c : *core_.conns)
    if (c->sink && c->subscriptions.contains(name)) c->sink->send_event(name, args);
}

std::vector<Conn> ActorContext::conns() const {
  std::vector<Conn> out;
  if (core_.conns)
    for (const auto& c : *core_.conns) out.emplace_back(*c);
  return out;
}

Result<std::string> ActorContext::schedule_after(int64_t delay_ms, std::string action, Array args) {
  if (delay_ms < 0) delay_ms = 0;
  return core_.add_schedule(now_ms() + delay_ms, std::move(action), std::move(args));
}

Result<std::string> ActorContext::schedule_at(int64_t unix_ms, std::string action, Array args) {
  return core_.add_schedule(unix_ms, std::move(action), std::move(args));
}

Result<std::string> ActorContext::schedule_every(std::string name, int64_t interval_ms, std::string action,
                                                 Array args) {
  return core_.add_recurring(std::move(name), interval_ms, std::move(action), std::move(args));
}

Result<bool> ActorContext::cancel_schedule(const std::string& id) { return core_.cancel_schedule(id); }

void ActorContext::send_to(std::string name, ActorKey key, std::string queue, Value body) {
  core_.outbox.push_back(OutboxMessage{std::move(name), std::move(key), false, std::move(queue), std::move(body), "",
                                       core_.actor_id});
}

void ActorContext::call_actor(std::string name, ActorKey key, std::string action, Array args, std::string reply_to) {
  core_.outbox.push_back(OutboxMessage{std::move(name), std::move(key), true, std::move(action), Value(std::move(args)),
                                       std::move(reply_to), core_.actor_id});
}

void ActorContext::sleep() { core_.sleep_requested = true; }
void ActorContext::destroy() { core_.destroy_requested = true; }

}  // namespace anvil
