#include "runtime/app_host.hpp"

#include <spdlog/spdlog.h>

namespace anvil {

AppHost::AppHost(Runtime& rt, std::map<std::string, std::string> config)
    : rt_(rt), config_(std::make_shared<const ConfigMap>(config.begin(), config.end())) {
  // Actors read the node's configuration too: a node that set it before
  // loading (so actors woken at load read it) keeps its own; otherwise the
  // host's becomes the actors'.
  if (!rt_.services().config) {
    Services s = rt_.services();
    s.config = config_;
    rt_.set_services(s);
  }
}

AppHost::~AppHost() = default;

void AppHost::add(const AppDefinition& app) {
  for (const auto& r : app.routes()) routes_.push_back(&r);
  for (const auto& s : app.services()) services_.emplace_back(app.name() + "/" + s.first, s.second);
}

std::optional<std::string> AppHost::config(std::string_view key) const {
  auto it = config_->find(key);
  if (it == config_->end()) return std::nullopt;
  return it->second;
}

void AppHost::start() {
  for (auto& [name, fn] : services_) asio::co_spawn(rt_.io(), run_service(name, fn), asio::detached);
}

asio::awaitable<void> AppHost::run_service(std::string name, AppServiceFn fn) {
  spdlog::info("app service {} started", name);
  Status st = Ok{};
  try {
    Task<Status> task = fn(*this);
    st = co_await std::move(task);
  } catch (const std::exception& e) {
    st = make_error("app", "service_failed", e.what());
  }
  if (st.ok())
    spdlog::info("app service {} stopped", name);
  else
    spdlog::error("app service {} ended: {} ({})", name, st.error().message, st.error().qualified());
}

asio::awaitable<std::optional<AppResponse>> AppHost::handle(AppRequest req) {
  bool path_matched = false;
  const AppRoute* route = match_route(routes_, req.method, req.path, req.params, &path_matched);
  if (!route) {
    if (!path_matched) co_return std::nullopt;
    co_return AppResponse::error(make_error("actor", "method_not_allowed", "Method " + req.method + " not allowed."),
                                 405);
  }
  try {
    Task<AppResponse> task = route->fn(*this, std::move(req));
    AppResponse res = co_await std::move(task);
    co_return res;
  } catch (const std::exception& e) {
    spdlog::error("app route {} {} threw: {}", route->method, route->pattern, e.what());
  }
  co_return AppResponse::error(internal_error());
}

Task<Result<std::string>> AppHost::resolve(std::string name, ActorKey key) {
  CreateRequest cr;
  cr.name = std::move(name);
  cr.key = std::move(key);
  auto r = rt_.get_or_create(cr);
  if (!r.ok()) co_return r.error();
  Status st = co_await rt_.durable(r->seq);
  if (!st.ok()) co_return st.error();
  co_return r->info.actor_id;
}

Task<Result<Value>> AppHost::call(std::string name, ActorKey key, std::string action, Array args) {
  auto id = co_await resolve(std::move(name), std::move(key));
  if (!id.ok()) co_return id.error();
  CallResult r = co_await rt_.call_action(*id, std::move(action), std::move(args), Value());
  co_return std::move(r.output);
}

Task<Result<Value>> AppHost::send(std::string name, ActorKey key, std::string queue, Value body, bool wait,
                                  std::chrono::milliseconds timeout) {
  auto id = co_await resolve(std::move(name), std::move(key));
  if (!id.ok()) co_return id.error();
  auto sent = co_await rt_.queue_send(*id, std::move(queue), std::move(body), wait,
                                      static_cast<uint64_t>(timeout.count()));
  if (!sent.ok()) co_return sent.error();
  if (sent->status == "timedOut")
    co_return make_error("queue", "timed_out", "The actor did not complete the message in time.");
  co_return sent->response.value_or(Value(Undefined{}));
}

}  // namespace anvil
