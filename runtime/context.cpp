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

void ActorContext::sleep() { core_.sleep_requested = true; }
void ActorContext::destroy() { core_.destroy_requested = true; }

}  // namespace anvil
