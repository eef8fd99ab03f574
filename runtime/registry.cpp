#include "runtime/actor_api.hpp"

#include <algorithm>

namespace anvil {

ActorDefinition& ActorDefinition::initial_state(Value v) {
  initial_state_ = std::move(v);
  create_state_ = nullptr;
  return *this;
}
ActorDefinition& ActorDefinition::create_state(CreateStateFn fn) {
  create_state_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_create(InputHookFn fn) {
  on_create_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_wake(HookFn fn) {
  on_wake_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_sleep(HookFn fn) {
  on_sleep_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_destroy(HookFn fn) {
  on_destroy_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_before_connect(ParamsHookFn fn) {
  on_before_connect_ = std::move(fn);
  return *this;
}

ActorDefinition& ActorDefinition::on_before_connect_async(ClientGuardFn fn) {
  on_before_connect_async_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::create_conn_state(CreateConnStateFn fn) {
  create_conn_state_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_connect(ConnHookFn fn) {
  on_connect_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_disconnect(ConnHookFn fn) {
  on_disconnect_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::create_vars(CreateVarsFn fn) {
  create_vars_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_state_change(StateChangeFn fn) {
  on_state_change_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_before_action_response(BeforeActionResponseFn fn) {
  on_before_action_response_ = std::move(fn);
  return *this;
}
// One name, one action: the last registration wins, sync or async.
ActorDefinition& ActorDefinition::action(std::string name, ActionFn fn) {
  async_actions_.erase(name);
  actions_[std::move(name)] = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::async_action(std::string name, AsyncActionFn fn) {
  actions_.erase(name);
  async_actions_[std::move(name)] = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::options(ActorOptions o) {
  options_ = o;
  return *this;
}

ActorDefinition& ActorDefinition::queue(std::string name, QueueHandlerFn fn) {
  queues_[std::move(name)] = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_request(RequestFn fn) {
  on_request_async_ = nullptr;
  on_request_ = std::move(fn);
  return *this;
}
ActorDefinition& ActorDefinition::on_request_async(AsyncRequestFn fn) {
  on_request_ = nullptr;
  on_request_async_ = std::move(fn);
  return *this;
}

ActorDefinition& ActorDefinition::on_websocket(WebSocketFn fn) {
  on_websocket_ = std::move(fn);
  return *this;
}

ActorDefinition& ActorDefinition::run(WorkflowFn fn) {
  run_ = std::move(fn);
  return *this;
}

ActorDefinition& ActorDefinition::database(DatabaseOptions opts) {
  database_ = std::move(opts);
  return *this;
}

ActorDefinition& ActorDefinition::created_only_by(std::vector<std::string> creators, Error refusal) {
  creators_ = std::move(creators);
  creation_refusal_ = std::move(refusal);
  return *this;
}

const QueueHandlerFn* ActorDefinition::find_queue(std::string_view name) const {
  auto it = queues_.find(name);
  return it == queues_.end() || !it->second ? nullptr : &it->second;
}

std::optional<std::string> RawRequest::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return std::nullopt;
}

std::optional<std::string> ClientRequest::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return std::nullopt;
}

std::vector<std::string> ActorDefinition::action_names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : actions_) out.push_back(n);
  for (const auto& [n, _] : async_actions_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

const ActionFn* ActorDefinition::find_action(const std::string& name) const {
  auto it = actions_.find(name);
  return it == actions_.end() ? nullptr : &it->second;
}

const AsyncActionFn* ActorDefinition::find_async_action(const std::string& name) const {
  auto it = async_actions_.find(name);
  return it == async_actions_.end() ? nullptr : &it->second;
}

Result<Value> ActorDefinition::make_state(ActorContext& c, const Value& input) const {
  if (create_state_) return create_state_(c, input);
  return initial_state_;  // a deep copy per actor
}

Error user_error(std::string message, std::string code, std::optional<Value> metadata) {
  return make_error("user", std::move(code), std::move(message), std::move(metadata));
}

Result<int64_t> arg_int(const Array& args, size_t i, int64_t fallback) {
  if (i >= args.size() || args[i].is_undefined()) return fallback;
  const Value& v = args[i];
  if (v.is_int()) return v.as_int();
  if (v.is_double() && v.as_double() == static_cast<double>(static_cast<int64_t>(v.as_double())))
    return static_cast<int64_t>(v.as_double());
  return make_error("actor", "invalid_request",
                    "Argument " + std::to_string(i) + " must be an integer.");
}

void Registry::add(ActorDefinition def) {
  auto name = def.name();
  defs_[name] = std::make_shared<const ActorDefinition>(std::move(def));
}

const ActorDefinition* Registry::find(std::string_view name) const {
  auto it = defs_.find(name);
  return it == defs_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : defs_) out.push_back(n);
  return out;
}

}  // namespace anvil
