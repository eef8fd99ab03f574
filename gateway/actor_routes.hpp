// The actor gateway (client-protocol.md §3–§5): addressing an actor by id
// (`/gateway/<id>[@token]/…`), by name+key (`/gateway/<name>/…?rvt-…`) or by
// headers (`/request/…` + x-rivet-target/x-rivet-actor), then dispatching the
// actor path (`/action/<name>`, …) to the runtime.
#pragma once

#include <optional>
#include <string>

#include "engine-api/http.hpp"
#include "gateway/addressing.hpp"
#include "gateway/codec/wire.hpp"
#include "gateway/inspector_routes.hpp"
#include "runtime/runtime.hpp"

namespace anvil::gateway {

// Where a gateway request goes once addressing is resolved.
struct ActorTarget {
  std::string actor_id;
  std::string actor_path;   // e.g. "/action/increment" (raw, percent-encoded)
  std::string actor_query;  // the non-rvt query params, raw, in order ("" if none)
  std::optional<std::string> token;
  bool created_deferred = false;  // created by this request, record held back (see resolve_target)
};

// Rivet's message limits (rivetkit's registry `maxIncomingMessageSize` and
// `maxOutgoingMessageSize`, same defaults) for action calls, queue messages
// and connection-protocol frames, over HTTP and WebSocket. Raw `/request`
// bodies and raw WebSocket messages have ServerOptions::max_body_bytes.
struct MessageLimits {
  size_t max_incoming = 64 * 1024;
  size_t max_outgoing = 1024 * 1024;
};
// message.incoming_too_long / message.outgoing_too_long (HTTP 400).
Error incoming_too_long(size_t limit);
Error outgoing_too_long(size_t limit);

class ActorRoutes {
 public:
  explicit ActorRoutes(Runtime& rt, MessageLimits limits = {}) : rt_(rt), limits_(limits), inspector_(rt) {}
  // The token checks' admin token also opens every actor's inspector.
  void set_access(const AccessGuard* access) { inspector_.set_access(access); }
  InspectorRoutes& inspector() { return inspector_; }

  const MessageLimits& limits() const { return limits_; }

  // True for /gateway/… and for header-routed /request…, /connect, /websocket….
  bool matches(const http::Request& req, std::string_view path) const;
  asio::awaitable<http::Response> handle(const http::Request& req, std::string_view path);

 // Resolves the addressed actor (creating it for rvt-method=getOrCreate).
  // With `defer_create`, a new actor's record is left for its first turn to
  // commit (Runtime::get_or_create); the caller then owes a flush_create.
  asio::awaitable<Result<ActorTarget>> resolve_target(const http::Request& req, std::string_view path,
                                                      bool defer_create = false);

 private:
  asio::awaitable<http::Response> dispatch(const http::Request& req, const ActorTarget& t);
  asio::awaitable<http::Response> action(const http::Request& req, const ActorTarget& t,
                                         std::string action_name);
  asio::awaitable<http::Response> queue_send(const http::Request& req, const ActorTarget& t, std::string queue_name);
  asio::awaitable<http::Response> raw_request(const http::Request& req, const ActorTarget& t);

  Runtime& rt_;
  MessageLimits limits_;
  InspectorRoutes inspector_;
};

}  // namespace anvil::gateway
