// WebSocket front: the RivetKit connection protocol on `/connect`
// (client-protocol.md §6) and raw passthrough on `/websocket/…` (§7).
#pragma once

#include <optional>
#include <string>

#include "gateway/access.hpp"
#include "gateway/actor_routes.hpp"
#include "gateway/codec/wire.hpp"
#include "gateway/ws_protocols.hpp"
#include "gateway/http_server.hpp"
#include "runtime/runtime.hpp"

namespace anvil::gateway {

struct WsOptions {
  // Bytes queued for a client that does not read (frames not yet taken by
  // the kernel): past this the connection is closed with 1008
  // `message.outgoing_backlog_exceeded` and its queue dropped, so a client
  // that never reads cannot make the node buffer without bound.
  size_t max_pending_write_bytes = 4 * 1024 * 1024;
  // Largest message on a raw `/websocket/…` socket (connection-protocol
  // frames have the gateway's MessageLimits).
  size_t max_raw_message_bytes = 32 * 1024 * 1024;
};

class WsGateway {
 public:
  // `access`: the token check for upgrades (null: open).
  WsGateway(Runtime& rt, ActorRoutes& routes, const AccessGuard* access = nullptr, WsOptions opts = {})
      : rt_(rt), routes_(routes), access_(access), opts_(opts) {}
  // The HttpServer's upgrade handlers (plain HTTP; HTTPS with ALPN http/1.1).
  asio::awaitable<void> handle(BeastRequest req, boost::beast::tcp_stream stream);
  asio::awaitable<void> handle(BeastRequest req, TlsStream stream);

 private:
  template <typename Next>
  asio::awaitable<void> serve(BeastRequest req, Next stream);
  // `/inspector/connect`: Rivet's inspector live protocol (inspector token).
  template <typename Next>
  asio::awaitable<void> serve_inspector(BeastRequest req, Next stream, const http::Request& hreq, std::string presented,
                                        std::string actor_id);

  Runtime& rt_;
  ActorRoutes& routes_;
  const AccessGuard* access_;
  WsOptions opts_;
};

}  // namespace anvil::gateway
