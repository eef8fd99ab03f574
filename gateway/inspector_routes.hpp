// Rivet's actor inspector over HTTP (rivetkit 2.3.19): the routes under
// `/gateway/{actorId}/inspector/…` that scripts and inspector tabs use (the
// dashboard's WebSocket, /inspector/connect, is gateway/ws_session.cpp's
// InspectorSession, on the reads below) — state (GET, PATCH), connections, rpcs, action/{name}, queue (GET,
// POST, DELETE), traces, workflow-history, workflow/replay, database
// (schema, rows, execute) and summary — with rivetkit's JSON shapes.
// docs/protocol-notes.md, "Inspector", lists them and where Anvil differs.
//
// Access: `Authorization: Bearer <token>` where the token is the actor's
// inspector token (anvil actors get ID --json → inspectorToken; the
// manager route GET /actors/{id}/kv/keys/Aw== as on Rivet's engine) or the
// node's admin token. The client token alone does not open them (they
// change state); without either a request gets rivetkit's 401
// inspector.unauthorized. Each operation is the runtime's (Runtime::
// admin_operate, runtime/inspect.hpp), shared with the admin routes and
// `anvil actors`.
#pragma once

#include "engine-api/http.hpp"
#include "gateway/access.hpp"
#include "runtime/runtime.hpp"

namespace anvil::gateway {

class InspectorRoutes {
 public:
  explicit InspectorRoutes(Runtime& rt) : rt_(rt) {}
  // The admin token's holder may use every actor's inspector (null: only
  // the actors' own tokens open them).
  void set_access(const AccessGuard* access) { access_ = access; }

  // `sub`: the actor path after "/inspector" ("/state", "/queue", …).
  asio::awaitable<http::Response> handle(const http::Request& req, const std::string& actor_id,
                                         std::string_view sub);

  // rivetkit's refusal: 401 {group: "inspector", code: "unauthorized", …}.
  static Error unauthorized();
  // Whether `req` may use the inspector of an actor whose token is `token`.
  bool allowed(const http::Request& req, const std::string& token) const;
  // The same for a presented token (the WebSocket's rivet_inspector_token.<t>).
  bool allowed(std::string_view presented, const std::string& token) const;

  // The reads and changes behind the routes, as their JSON values (shared
  // with the inspector's WebSocket, gateway/ws_session.cpp).
  asio::awaitable<Result<Value>> operate(const std::string& id, AdminOp op);
  // The state (a turn: it wakes the actor).
  asio::awaitable<Result<Value>> state(const std::string& id);
  // The state as last written to storage (null before the first write): no turn.
  asio::awaitable<Result<Value>> stored_state(const std::string& id);
  // Rivet's connection entries {type, id, details}, HTTP actions' left out.
  asio::awaitable<Result<Value>> connections(const std::string& id);
  // The same from the runtime's list (AdminOp::kConnections, ActorWatcher).
  static Value rivet_connections(const Value& runtime_conns);
  // {history, workflowState, isWorkflowEnabled}.
  asio::awaitable<Result<Value>> workflow(const std::string& id);
  // {size, maxSize, truncated, messages: [{id, name, createdAtMs}]}.
  asio::awaitable<Result<Value>> queue(const std::string& id, long long limit);
  // Pending schedules [{id, action, args, dueTs, createdTs, intervalMs, name}], soonest first.
  asio::awaitable<Result<Value>> schedules(const std::string& id);
  // {tables: [{table, columns, foreignKeys, records}]}.
  asio::awaitable<Result<Value>> database_schema(const std::string& id);
  // [{column: value}], at most 500.
  asio::awaitable<Result<Value>> table_rows(const std::string& id, const std::string& table, long long limit,
                                            long long offset);

 private:
  asio::awaitable<Result<Value>> view(const std::string& id, inspect::View v, const std::string& arg);
  asio::awaitable<Result<Value>> sql_rows(const std::string& id, const std::string& sql);

  Runtime& rt_;
  const AccessGuard* access_ = nullptr;
};

}  // namespace anvil::gateway
