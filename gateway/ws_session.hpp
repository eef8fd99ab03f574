// WebSocket front: the RivetKit connection protocol on `/connect`
// (client-protocol.md §6) and raw passthrough on `/websocket/…` (§7).
#pragma once

#include <optional>
#include <string>

#include "gateway/actor_routes.hpp"
#include "gateway/codec/wire.hpp"
#include "gateway/http_server.hpp"
#include "runtime/runtime.hpp"

namespace anvil::gateway {

// What the client put in Sec-WebSocket-Protocol (pure; tested).
struct WsProtocols {
  bool rivet = false;
  std::optional<std::string> encoding;  // rivet_encoding.<x>
  std::optional<std::string> target;    // rivet_target.<x>
  std::optional<std::string> actor_id;  // rivet_actor.<id>
  std::optional<std::string> token;     // rivet_token.<t>
  bool skip_ready_wait = false;
  std::optional<std::string> conn_params;  // percent-decoded JSON text
};
WsProtocols parse_ws_protocols(std::string_view header);

class WsGateway {
 public:
  WsGateway(Runtime& rt, ActorRoutes& routes) : rt_(rt), routes_(routes) {}
  // The HttpServer's upgrade handler.
  asio::awaitable<void> handle(BeastRequest req, boost::beast::tcp_stream stream);

  // Largest connection-protocol frame accepted (message.incoming_too_long).
  static constexpr size_t kMaxFrameBytes = 4 * 1024 * 1024;

 private:
  Runtime& rt_;
  ActorRoutes& routes_;
};

}  // namespace anvil::gateway
