// The node side of applications: the enabled apps' routes, their background
// services, and the ActorClient they call actors through. Built by `anvil
// serve` after the runtime; the gateway asks it for app routes.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/app_api.hpp"
#include "runtime/runtime.hpp"

namespace anvil {

class AppHost : public AppContext, private ActorClient {
 public:
  // `config` is what routes and services read (AppContext::config); it is
  // also what actors read (ActorContext::config) unless the node's Services
  // already carry a configuration.
  AppHost(Runtime& rt, std::map<std::string, std::string> config);
  ~AppHost() override;

  // Registers the app's routes (the app's actor types go into the registry
  // before the runtime is built). `app` outlives the host.
  void add(const AppDefinition& app);
  bool empty() const { return routes_.empty() && services_.empty(); }

  // Starts every app's services as coroutines on the node's io_context.
  void start();
  // Asks services to stop (stopping() turns true).
  void stop() { stopping_.store(true); }

  // The response of the matching route; nullopt when no app route matches
  // the path (the caller answers 404); 405 when only the method differs.
  asio::awaitable<std::optional<AppResponse>> handle(AppRequest req);

  // AppContext
  ActorClient& actors() override { return *this; }
  Services services() const override { return rt_.services(); }
  std::optional<std::string> config(std::string_view key) const override;
  bool stopping() const override { return stopping_.load(); }

 private:
  // ActorClient
  Task<Result<Value>> call(std::string name, ActorKey key, std::string action, Array args) override;
  Task<Result<Value>> send(std::string name, ActorKey key, std::string queue, Value body, bool wait,
                           std::chrono::milliseconds timeout) override;
  Task<Result<std::string>> resolve(std::string name, ActorKey key) override;
  asio::awaitable<void> run_service(std::string name, AppServiceFn fn);

  Runtime& rt_;
  std::shared_ptr<const ConfigMap> config_;
  std::vector<const AppRoute*> routes_;
  std::vector<std::pair<std::string, AppServiceFn>> services_;
  std::atomic<bool> stopping_{false};
};

}  // namespace anvil
