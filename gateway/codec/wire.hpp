// Encoders/decoders for every client-protocol message (client-protocol.md
// §4–§8) in the three encodings. Pure: bytes in, values or Error out.
// Decoding failures return Error{"actor","invalid_request",<why>}.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::wire {

enum class Encoding { Json, Cbor, Bare };

// "json" | "cbor" | "bare"; nullopt for anything else.
std::optional<Encoding> parse_encoding(std::string_view s);
std::string_view encoding_name(Encoding e);
// application/json for Json, application/octet-stream otherwise.
std::string_view content_type(Encoding e);

// BARE client-protocol version we emit; decoders accept 1..4 where the
// message shape allows (Init v1 etc. are server->client only).
constexpr uint16_t kBareVersion = 4;

struct ActorSpecifier {
  std::string actor_id;
  uint64_t generation = 1;
  std::optional<std::string> key;  // serialized key
};

// ---- HTTP action (§4) ----
// json: {"args":[...]} (lenient: array => args, null/absent => [], scalar => [scalar])
// cbor: map {args} ; bare: 04 00 + HttpActionRequest{args: data(compat CBOR)}
Result<Array> decode_action_request(Encoding e, std::span<const uint8_t> body);
Bytes encode_action_response(Encoding e, const Value& output);

// ---- HTTP error (§4.4) ----
// json: {"group","code","message"[,"metadata"][,"actor":{actorId,generation,key?}]}
// cbor: same map (generation as small int); bare: HttpResponseError.
Bytes encode_http_error(Encoding e, const Error& err,
                        const std::optional<ActorSpecifier>& actor);

// ---- Queue send (§5.1) ----
struct QueueSendRequest {
  Value body;
  std::optional<std::string> name;
  bool wait = false;
  std::optional<uint64_t> timeout_ms;
};
Result<QueueSendRequest> decode_queue_send(Encoding e, std::span<const uint8_t> body);
struct QueueSendResponse {
  std::string status;  // "completed" | "timedOut"
  std::optional<Value> response;
};
Bytes encode_queue_send_response(Encoding e, const QueueSendResponse& r);

// ---- WebSocket connection protocol (§6) ----
struct ActionRequest {
  uint64_t id = 0;
  std::string name;
  Array args;
};
struct SubscriptionRequest {
  std::string event_name;
  bool subscribe = false;
};
using ToServer = std::variant<ActionRequest, SubscriptionRequest>;
// json frames may arrive as text or binary; cbor/bare must be binary.
Result<ToServer> decode_to_server(Encoding e, std::span<const uint8_t> frame);

struct InitMsg {
  std::string actor_id;
  std::string connection_id;
};
struct ErrorMsg {
  Error error;
  std::optional<uint64_t> action_id;  // nullopt => connection-level error
  std::optional<ActorSpecifier> actor;
};
struct ActionResponseMsg {
  uint64_t id = 0;
  Value output;
};
struct EventMsg {
  std::string name;
  Array args;
};
using ToClient = std::variant<InitMsg, ErrorMsg, ActionResponseMsg, EventMsg>;
// Protocol integers (id, actionId) are emitted bigint-shaped:
// json ["$BigInt","n"], cbor 1b + 8 bytes, bare LEB128. `actionId` is always
// present in json/cbor (null when absent). ActorSpecifier.generation inside a
// WS Error is a `1b` uint in cbor.
Bytes encode_to_client(Encoding e, const ToClient& msg);

}  // namespace anvil::wire
