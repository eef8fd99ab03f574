// The Rivet Engine's envoy protocol, version 8: the BARE messages an Anvil
// node exchanges with a `rivet-engine` over `/envoys/connect` when it runs as
// a runner under the engine (docs/envoy.md). One WebSocket binary message is
// one ToRivet (node → engine) or ToEnvoy (engine → node) union, with no
// version prefix: the version is fixed by the connect URL.
//
// The executable reference is `@rivetkit/engine-envoy-protocol` 2.3.19
// (dist/index.js, `VERSION = 8`); codec/envoy.test.cpp checks these encoders
// and decoders against bytes that package produced. The SQLite messages
// (ToRivet tags 7–14, ToEnvoy tags 6–13) are not used by Anvil: decoding one
// is an error naming the tag, and there is no encoder for them.
//
// Wire types: Id = string; Json = string; GatewayId and RequestId = 4 fixed
// bytes; MessageIndex = u16; i64/u64/u32/u16 little-endian fixed width; maps
// are uint count + (key, value) pairs, kept here in wire order.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::envoy {

inline constexpr uint16_t kProtocolVersion = 8;

using StringMap = std::vector<std::pair<std::string, std::string>>;
using FixedId = std::array<uint8_t, 4>;  // GatewayId, RequestId

// ---- KV ----
struct KvMetadata {
  Bytes version;
  int64_t update_ts = 0;
};
struct KvListAll {};
struct KvListRange {
  Bytes start, end;
  bool exclusive = false;
};
struct KvListPrefix {
  Bytes key;
};
using KvListQuery = std::variant<KvListAll, KvListRange, KvListPrefix>;

struct KvGetRequest {
  std::vector<Bytes> keys;
};
struct KvListRequest {
  KvListQuery query;
  std::optional<bool> reverse;
  std::optional<uint64_t> limit;
};
struct KvPutRequest {
  std::vector<Bytes> keys, values;
};
struct KvDeleteRequest {
  std::vector<Bytes> keys;
};
struct KvDeleteRangeRequest {
  Bytes start, end;
};
struct KvDropRequest {};
using KvRequestData = std::variant<KvGetRequest, KvListRequest, KvPutRequest, KvDeleteRequest,
                                   KvDeleteRangeRequest, KvDropRequest>;

struct KvErrorResponse {
  std::string message;
};
struct KvGetResponse {  // also the shape of KvListResponse
  std::vector<Bytes> keys, values;
  std::vector<KvMetadata> metadata;
};
struct KvListResponse {
  std::vector<Bytes> keys, values;
  std::vector<KvMetadata> metadata;
};
struct KvPutResponse {};
struct KvDeleteResponse {};
struct KvDropResponse {};
using KvResponseData = std::variant<KvErrorResponse, KvGetResponse, KvListResponse, KvPutResponse,
                                    KvDeleteResponse, KvDropResponse>;

// ---- actors: commands and events ----
enum class StopCode : uint8_t { Ok = 0, Error = 1 };
enum class StopActorReason : uint8_t { SleepIntent = 0, StopIntent = 1, Destroy = 2, GoingAway = 3, Lost = 4 };

struct ActorName {
  std::string metadata;  // JSON text
};
struct ActorConfig {
  std::string name;
  std::optional<std::string> key;
  int64_t create_ts = 0;
  std::optional<Bytes> input;
};
struct ActorCheckpoint {
  std::string actor_id;
  uint32_t generation = 0;
  int64_t index = 0;
};

struct IntentSleep {};
struct IntentStop {};
using ActorIntent = std::variant<IntentSleep, IntentStop>;
struct StateRunning {};
struct StateStopped {
  StopCode code = StopCode::Ok;
  std::optional<std::string> message;
};
using ActorState = std::variant<StateRunning, StateStopped>;

struct EventActorIntent {
  ActorIntent intent;
};
struct EventActorStateUpdate {
  ActorState state;
};
struct EventActorSetAlarm {
  std::optional<int64_t> alarm_ts;  // ms since the epoch; nullopt clears
};
using Event = std::variant<EventActorIntent, EventActorStateUpdate, EventActorSetAlarm>;
struct EventWrapper {
  ActorCheckpoint checkpoint;
  Event inner;
};

struct PreloadedKvEntry {
  Bytes key, value;
  KvMetadata metadata;
};
struct PreloadedKv {
  std::vector<PreloadedKvEntry> entries;
  std::vector<Bytes> requested_get_keys;
  std::vector<Bytes> requested_prefixes;
};
struct HibernatingRequest {
  FixedId gateway_id{}, request_id{};
};
struct CommandStartActor {
  ActorConfig config;
  std::vector<HibernatingRequest> hibernating_requests;
  std::optional<PreloadedKv> preloaded_kv;
};
struct CommandStopActor {
  StopActorReason reason = StopActorReason::SleepIntent;
};
using Command = std::variant<CommandStartActor, CommandStopActor>;
struct CommandWrapper {
  ActorCheckpoint checkpoint;
  Command inner;
};

// ---- tunnel ----
struct MessageId {
  FixedId gateway_id{}, request_id{};
  uint16_t message_index = 0;
};

enum class AbortReasonKind : uint8_t { Unknown = 0, Cancelled = 1, HandlerError = 2, InternalError = 3 };
struct HttpStreamAbortReason {
  AbortReasonKind kind = AbortReasonKind::Unknown;
  std::optional<std::string> detail;
};

struct ToEnvoyRequestStart {
  std::string actor_id;
  std::optional<uint32_t> actor_generation;
  std::string method, path;
  StringMap headers;
  std::optional<Bytes> body;
  bool stream = false;
  bool response_stream = false;
};
struct ToEnvoyRequestChunk {
  Bytes body;
  bool finish = false;
};
struct ToEnvoyRequestAbort {
  std::optional<std::string> actor_id;
  std::optional<uint32_t> actor_generation;
  HttpStreamAbortReason reason;
};
struct ToEnvoyRequestBodyCancel {};
struct ToEnvoyResponseBodyWindowUpdate {
  uint64_t consumed_bytes = 0;
};
struct ToEnvoyWebSocketOpen {
  std::string actor_id;
  std::optional<uint32_t> actor_generation;
  std::string path;
  StringMap headers;
};
struct ToEnvoyWebSocketMessage {
  Bytes data;
  bool binary = false;
};
struct ToEnvoyWebSocketClose {
  std::optional<uint16_t> code;
  std::optional<std::string> reason;
};
using ToEnvoyTunnelKind =
    std::variant<ToEnvoyRequestStart, ToEnvoyRequestChunk, ToEnvoyRequestAbort, ToEnvoyRequestBodyCancel,
                 ToEnvoyResponseBodyWindowUpdate, ToEnvoyWebSocketOpen, ToEnvoyWebSocketMessage,
                 ToEnvoyWebSocketClose>;

struct ToRivetResponseStart {
  uint16_t status = 200;
  StringMap headers;
  std::optional<Bytes> body;
  bool stream = false;
};
struct ToRivetResponseChunk {
  Bytes body;
  bool finish = false;
};
struct ToRivetResponseAbort {
  HttpStreamAbortReason reason;
};
struct ToRivetRequestBodyWindowUpdate {
  uint64_t consumed_bytes = 0;
};
struct ToRivetRequestBodyCancel {};
struct ToRivetWebSocketOpen {
  bool can_hibernate = false;
};
struct ToRivetWebSocketMessage {
  Bytes data;
  bool binary = false;
};
struct ToRivetWebSocketMessageAck {
  uint16_t index = 0;
};
struct ToRivetWebSocketClose {
  std::optional<uint16_t> code;
  std::optional<std::string> reason;
  bool hibernate = false;
};
using ToRivetTunnelKind =
    std::variant<ToRivetResponseStart, ToRivetResponseChunk, ToRivetResponseAbort, ToRivetRequestBodyWindowUpdate,
                 ToRivetRequestBodyCancel, ToRivetWebSocketOpen, ToRivetWebSocketMessage, ToRivetWebSocketMessageAck,
                 ToRivetWebSocketClose>;

// ---- top level: node → engine ----
struct ToRivetMetadata {
  std::optional<std::vector<std::pair<std::string, ActorName>>> prepopulate_actor_names;
  std::optional<std::string> metadata;  // JSON text
};
struct ToRivetEvents {
  std::vector<EventWrapper> events;
};
struct ToRivetAckCommands {
  std::vector<ActorCheckpoint> last_command_checkpoints;
};
struct ToRivetStopping {};
struct ToRivetPong {
  int64_t ts = 0;
};
struct ToRivetKvRequest {
  std::string actor_id;
  uint32_t request_id = 0;
  KvRequestData data;
};
struct ToRivetTunnelMessage {
  MessageId message_id;
  ToRivetTunnelKind kind;
};
using ToRivet = std::variant<ToRivetMetadata, ToRivetEvents, ToRivetAckCommands, ToRivetStopping, ToRivetPong,
                             ToRivetKvRequest, ToRivetTunnelMessage>;

// ---- top level: engine → node ----
struct ProtocolMetadata {
  int64_t envoy_lost_threshold = 0;  // ms
  int64_t actor_stop_threshold = 0;  // ms
  uint64_t max_response_payload_size = 0;
};
struct ToEnvoyInit {
  ProtocolMetadata metadata;
};
struct ToEnvoyCommands {
  std::vector<CommandWrapper> commands;
};
struct ToEnvoyAckEvents {
  std::vector<ActorCheckpoint> last_event_checkpoints;
};
struct ToEnvoyKvResponse {
  uint32_t request_id = 0;
  KvResponseData data;
};
struct ToEnvoyTunnelMessage {
  MessageId message_id;
  ToEnvoyTunnelKind kind;
};
struct ToEnvoyPing {
  int64_t ts = 0;
};
using ToEnvoy = std::variant<ToEnvoyInit, ToEnvoyCommands, ToEnvoyAckEvents, ToEnvoyKvResponse,
                             ToEnvoyTunnelMessage, ToEnvoyPing>;

// Both directions encode and decode (the decoder of ToRivet and the encoder of
// ToEnvoy serve tests and the fake engine). Decoding fails with a
// "envoy.invalid_message" error naming what was wrong (truncated, unknown or
// unsupported tag, trailing bytes, bad UTF-8, a bool that is not 0/1).
Bytes encode(const ToRivet& msg);
Bytes encode(const ToEnvoy& msg);
Result<ToRivet> decode_to_rivet(std::span<const uint8_t> bytes);
Result<ToEnvoy> decode_to_envoy(std::span<const uint8_t> bytes);

}  // namespace anvil::envoy
