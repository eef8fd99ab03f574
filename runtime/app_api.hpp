// Applications: a set of actor types plus the HTTP routes, Postgres
// migrations and background services that come with them, enabled per node
// with `anvil serve --app NAME`. Applications are written only against this
// header and actor_api.hpp.
//
//   AppDefinition app("growqr");
//   app.needs_postgres = true;
//   app.actor(user_event_actor());
//   app.route("POST", "/events", [](AppContext& c, AppRequest req) -> Task<AppResponse> {
//     auto r = co_await c.actors().call("userEventActor", {user}, "ingest", {event});
//     co_return r.ok() ? AppResponse::json(202, *r) : AppResponse::error(r.error());
//   });
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/actor_api.hpp"

namespace anvil {

namespace pg {
struct Migration;
struct QueryResult;
}

// An HTTP request to an application route (the gateway converts to it).
struct AppRequest {
  std::string method;
  std::string path;   // raw (percent-encoded) path, without the query
  std::string query;  // raw query without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::map<std::string, std::string> params;  // `:name` segments of the route pattern, decoded
  std::string request_id;                     // the gateway's ray id
  std::optional<std::string> header(std::string_view lower_name) const;
  std::optional<std::string> query_param(std::string_view name) const;  // form-decoded
};

struct AppResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  static AppResponse json(int status, const Value& body);
  // The engine's JSON error shape ({group, code, message, metadata}), status
  // from the error unless given.
  static AppResponse error(const Error& e, int status = 0);
};

// Calls into actors from routes and services, like rivetkit's server-side
// client: get-or-create by (name, key), then the call; results are durable
// before they are returned.
class ActorClient {
 public:
  virtual ~ActorClient() = default;
  virtual Task<Result<Value>> call(std::string name, ActorKey key, std::string action, Array args) = 0;
  // Onto a declared durable queue; with `wait`, until the actor completes the
  // message (or `timeout`); returns its response (undefined without wait).
  virtual Task<Result<Value>> send(std::string name, ActorKey key, std::string queue, Value body, bool wait = false,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(30)) = 0;
  // The actor's id (creating it when missing).
  virtual Task<Result<std::string>> resolve(std::string name, ActorKey key) = 0;
};

// What routes and services see of the node.
class AppContext {
 public:
  virtual ~AppContext() = default;
  virtual ActorClient& actors() = 0;
  virtual Services services() const = 0;
  // Configuration of the node (flags and environment) by key, e.g.
  // "GROWQR_STREAM"; the app documents its keys.
  virtual std::optional<std::string> config(std::string_view key) const = 0;
  // Cooperative stop for long-running services: true once the node stops.
  virtual bool stopping() const = 0;
  // Outbound HTTP and Postgres with the same errors as ActorContext's
  // (outbound.*, db.not_configured / db.*).
  Task<Result<net::HttpResponse>> http(net::HttpRequest req);
  Task<Result<pg::QueryResult>> sql(std::string query, Array params = {});
};

// The node's configuration as applications see it: the environment, plus
// the node's own settings under their environment names (ANVIL_POSTGRES_URL,
// ANVIL_REDIS_URL hold the URLs in use, whether from flags or environment).
using AppConfig = std::map<std::string, std::string>;
// Checks an app's configuration; returns every problem found (empty: fine).
// Each problem is one line naming the setting, e.g. "SERVICE_TOKEN is
// required in production".
using AppValidateFn = std::function<std::vector<std::string>(const AppConfig&)>;

using AppRouteFn = std::function<Task<AppResponse>(AppContext&, AppRequest)>;
// A background service (e.g. a stream consumer): runs from start until the
// node stops; should return soon after stopping() turns true.
using AppServiceFn = std::function<Task<Status>(AppContext&)>;

struct AppRoute {
  std::string method;
  std::string pattern;  // "/workflow-runs/:runId/pause"
  AppRouteFn fn;
};

class AppDefinition {
 public:
  explicit AppDefinition(std::string name) : name_(std::move(name)) {}
  AppDefinition& actor(ActorDefinition def);
  AppDefinition& route(std::string method, std::string pattern, AppRouteFn fn);
  AppDefinition& service(std::string name, AppServiceFn fn);
  AppDefinition& migrations(std::string set, const std::vector<pg::Migration>* list);
  AppDefinition& needs_postgres(bool v = true);
  AppDefinition& needs_redis(bool v = true);
  // Startup checks (fail fast): `anvil serve` runs every enabled app's
  // checks with the node's configuration before it opens storage or
  // listens, prints every problem on stderr and exits non-zero when there is
  // any. Checks only read; they keep nothing.
  AppDefinition& validate(AppValidateFn fn);
  std::vector<std::string> check_config(const AppConfig& config) const;

  const std::string& name() const { return name_; }
  std::vector<ActorDefinition>& actors() { return actors_; }
  const std::vector<AppRoute>& routes() const { return routes_; }
  const std::vector<std::pair<std::string, AppServiceFn>>& services() const { return services_; }
  const std::string& migration_set() const { return migration_set_; }
  const std::vector<pg::Migration>* migration_list() const { return migrations_; }
  bool requires_postgres() const { return needs_postgres_; }
  bool requires_redis() const { return needs_redis_; }

 private:
  std::string name_;
  std::vector<ActorDefinition> actors_;
  std::vector<AppRoute> routes_;
  std::vector<std::pair<std::string, AppServiceFn>> services_;
  std::vector<AppValidateFn> validators_;
  std::string migration_set_;
  const std::vector<pg::Migration>* migrations_ = nullptr;
  bool needs_postgres_ = false, needs_redis_ = false;
};

// Route matching: the first route whose method and pattern match; fills
// `params`. nullptr when none (the gateway then answers 404 / 405).
const AppRoute* match_route(const std::vector<const AppRoute*>& routes, std::string_view method,
                            std::string_view path, std::map<std::string, std::string>& params,
                            bool* path_matched = nullptr);

}  // namespace anvil
