// The `Sec-WebSocket-Protocol` header of a WebSocket upgrade
// (client-protocol.md §6.1): browsers cannot set headers on a WebSocket, so
// rivetkit's client carries the encoding, connection params and header
// routing as subprotocols. Pure (text in, fields out) so that the untrusted
// header can be unit-tested and fuzzed (tests/fuzz/fuzz_ws_protocol.cpp);
// WsGateway::handle acts on the result.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace anvil::gateway {

// What the client put in Sec-WebSocket-Protocol. Items are split at ',' and
// trimmed of spaces and tabs; unknown items are ignored; a repeated item's
// last occurrence wins.
struct WsProtocols {
  bool rivet = false;
  std::optional<std::string> encoding;  // rivet_encoding.<x>, raw
  std::optional<std::string> target;    // rivet_target.<x>, raw
  std::optional<std::string> actor_id;  // rivet_actor.<id>, percent-decoded (raw if not decodable)
  std::optional<std::string> token;     // rivet_token.<t>, percent-decoded (raw if not decodable)
  // rivet_inspector_token.<t>, raw (as rivetkit takes it): the inspector
  // socket's credential (/inspector/connect).
  std::optional<std::string> inspector_token;
  bool skip_ready_wait = false;         // rivet_skip_ready_wait
  // rivet_conn_params.<x>, percent-decoded JSON text; absent when empty (no
  // params, as rivetkit reads it) or when the escapes are bad, which sets
  // conn_params_malformed (the gateway refuses the upgrade, as rivetkit's
  // decodeURIComponent throws).
  std::optional<std::string> conn_params;
  bool conn_params_malformed = false;
};
WsProtocols parse_ws_protocols(std::string_view header);

}  // namespace anvil::gateway
