// An instance's connections (hooks, lookup, close) and raw WebSockets.
#include "runtime/instance.hpp"

#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "runtime/instance_support.hpp"
#include "storage/records.hpp"

namespace anvil {
using namespace detail;

Result<std::shared_ptr<ConnData>> Instance::open_conn(Value params, std::shared_ptr<ConnSink> sink,
                                                      bool ephemeral) {
  ActorContext ctx(*this);
  if (def_.on_before_connect_hook()) {
    auto st = timed(actor_id, "onBeforeConnect", def_.options().connection_hook_timeout,
                    make_error("actor", "connect_timed_out", "onBeforeConnect timed out."),
                    [&] { return def_.on_before_connect_hook()(ctx, params); });
    if (!st.ok()) return st.error();
  }
  auto conn = std::make_shared<ConnData>();
  conn->id = new_conn_id();
  conn->ephemeral = ephemeral;
  conn->sink = std::move(sink);
  if (def_.create_conn_state_hook()) {
    auto s = timed(actor_id, "createConnState", def_.options().connection_hook_timeout,
                   make_error("actor", "connect_timed_out", "createConnState timed out."),
                   [&] { return def_.create_conn_state_hook()(ctx, params); });
    if (!s.ok()) return s.error();
    conn->state = std::move(*s);
  }
  conn->params = std::move(params);
  entry_->conns.push_back(conn);
  if (!ephemeral) conns_changed = true;
  if (def_.on_connect_hook()) {
    Conn view(*conn);
    auto st = timed(actor_id, "onConnect", def_.options().connection_hook_timeout,
                    make_error("actor", "connect_timed_out", "onConnect timed out."),
                    [&] { return def_.on_connect_hook()(ctx, view); });
    if (!st.ok()) {
      std::erase(entry_->conns, conn);
      return st.error();
    }
  }
  return conn;
}

std::shared_ptr<ConnData> Instance::find_conn(const std::string& conn_id) const {
  for (const auto& c : entry_->conns)
    if (c->id == conn_id) return c;
  return nullptr;
}

void Instance::close_conn(const std::string& conn_id) {
  auto conn = find_conn(conn_id);
  if (!conn) return;
  std::erase(entry_->conns, conn);
  if (!conn->ephemeral) conns_changed = true;
  if (def_.on_disconnect_hook()) {
    ActorContext ctx(*this);
    Conn view(*conn);
    auto st = guarded(actor_id, "onDisconnect", [&] { return def_.on_disconnect_hook()(ctx, view); });
    if (!st.ok()) spdlog::warn("actor {}: onDisconnect failed: {}", actor_id, st.error().message);
  }
}

Result<uint64_t> Instance::open_raw_socket(const RawRequest& req, std::shared_ptr<RawWebSocket> socket) {
  if (!def_.on_websocket_hook())
    return make_error("actor", "websocket_handler_not_found", "This actor has no onWebSocket handler.");
  ActorContext ctx(*this);
  ctx.traceparent_ = request_traceparent(req);
  const std::optional<log::TraceParent> tp = log::parse_traceparent(ctx.traceparent_);
  log::Scope trace(log::trace_fields(tp));
  auto handlers = guarded(actor_id, "onWebSocket", [&] { return def_.on_websocket_hook()(ctx, socket, req); });
  if (!handlers.ok()) return handlers.error();
  uint64_t handle = entry_->ext().next_raw_socket++;
  entry_->ext().raw_sockets[handle] =
      ActorEntry::RawSocket{std::move(socket), std::move(*handlers), std::move(ctx.traceparent_)};
  return handle;
}

void Instance::raw_socket_message(uint64_t handle, const WsMessage& msg) {
  auto it = entry_->ext().raw_sockets.find(handle);
  if (it == entry_->ext().raw_sockets.end() || !it->second.handlers.on_message) return;
  ActorContext ctx(*this);
  ctx.traceparent_ = it->second.traceparent;
  const std::optional<log::TraceParent> tp = log::parse_traceparent(ctx.traceparent_);
  log::Scope trace(log::trace_fields(tp));
  auto sock = it->second.socket;
  auto& fn = it->second.handlers.on_message;
  // guarded() logs a throwing handler; a socket frame has nobody to answer.
  (void)guarded(actor_id, "websocket message", [&]() -> Status {
    fn(ctx, *sock, msg);
    return Ok{};
  });
}

void Instance::raw_socket_closed(uint64_t handle, uint16_t code, const std::string& reason) {
  auto it = entry_->ext().raw_sockets.find(handle);
  if (it == entry_->ext().raw_sockets.end()) return;
  auto entry = std::move(it->second);
  entry_->ext().raw_sockets.erase(it);
  if (!entry.handlers.on_close) return;
  ActorContext ctx(*this);
  // guarded() logs a throwing handler; the socket is closed, nobody to answer.
  (void)guarded(actor_id, "websocket close", [&]() -> Status {
    entry.handlers.on_close(ctx, *entry.socket, code, reason);
    return Ok{};
  });
}

}  // namespace anvil
