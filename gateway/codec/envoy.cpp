#include "gateway/codec/envoy.hpp"

#include <algorithm>
#include <concepts>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "gateway/codec/bare.hpp"

// The wire is fully determined by the C++ types of the header: every
// uint16_t/uint32_t/int64_t/uint64_t field is fixed-width little-endian,
// std::string is a BARE string, Bytes is `data`, FixedId is data[4], a vector
// is a list (a vector of pairs is a map), std::optional is an optional, a
// std::variant is a union whose tag is the alternative's index, an enum is its
// value. Union and enum tags are one byte, as the reference package writes
// them (the same bytes as a BARE uint below 128). Structs list their fields
// once, below, and both directions walk that list.

namespace anvil::envoy {
namespace {

// Each struct's fields in wire order (the order of the .bare schema).
#define ENVOY_FIELDS(Type, ...)                         \
  template <typename S>                                 \
    requires std::same_as<std::remove_const_t<S>, Type> \
  auto fields(S& x) {                                   \
    return std::tie(__VA_ARGS__);                       \
  }

ENVOY_FIELDS(KvMetadata, x.version, x.update_ts)
ENVOY_FIELDS(KvListRange, x.start, x.end, x.exclusive)
ENVOY_FIELDS(KvListPrefix, x.key)
ENVOY_FIELDS(KvGetRequest, x.keys)
ENVOY_FIELDS(KvListRequest, x.query, x.reverse, x.limit)
ENVOY_FIELDS(KvPutRequest, x.keys, x.values)
ENVOY_FIELDS(KvDeleteRequest, x.keys)
ENVOY_FIELDS(KvDeleteRangeRequest, x.start, x.end)
ENVOY_FIELDS(KvErrorResponse, x.message)
ENVOY_FIELDS(KvGetResponse, x.keys, x.values, x.metadata)
ENVOY_FIELDS(KvListResponse, x.keys, x.values, x.metadata)

ENVOY_FIELDS(ActorName, x.metadata)
ENVOY_FIELDS(ActorConfig, x.name, x.key, x.create_ts, x.input)
ENVOY_FIELDS(ActorCheckpoint, x.actor_id, x.generation, x.index)
ENVOY_FIELDS(StateStopped, x.code, x.message)
ENVOY_FIELDS(EventActorIntent, x.intent)
ENVOY_FIELDS(EventActorStateUpdate, x.state)
ENVOY_FIELDS(EventActorSetAlarm, x.alarm_ts)
ENVOY_FIELDS(EventWrapper, x.checkpoint, x.inner)
ENVOY_FIELDS(PreloadedKvEntry, x.key, x.value, x.metadata)
ENVOY_FIELDS(PreloadedKv, x.entries, x.requested_get_keys, x.requested_prefixes)
ENVOY_FIELDS(HibernatingRequest, x.gateway_id, x.request_id)
ENVOY_FIELDS(CommandStartActor, x.config, x.hibernating_requests, x.preloaded_kv)
ENVOY_FIELDS(CommandStopActor, x.reason)
ENVOY_FIELDS(CommandWrapper, x.checkpoint, x.inner)

ENVOY_FIELDS(MessageId, x.gateway_id, x.request_id, x.message_index)
ENVOY_FIELDS(HttpStreamAbortReason, x.kind, x.detail)
ENVOY_FIELDS(ToEnvoyRequestStart, x.actor_id, x.actor_generation, x.method, x.path, x.headers, x.body, x.stream,
             x.response_stream)
ENVOY_FIELDS(ToEnvoyRequestChunk, x.body, x.finish)
ENVOY_FIELDS(ToEnvoyRequestAbort, x.actor_id, x.actor_generation, x.reason)
ENVOY_FIELDS(ToEnvoyResponseBodyWindowUpdate, x.consumed_bytes)
ENVOY_FIELDS(ToEnvoyWebSocketOpen, x.actor_id, x.actor_generation, x.path, x.headers)
ENVOY_FIELDS(ToEnvoyWebSocketMessage, x.data, x.binary)
ENVOY_FIELDS(ToEnvoyWebSocketClose, x.code, x.reason)
ENVOY_FIELDS(ToRivetResponseStart, x.status, x.headers, x.body, x.stream)
ENVOY_FIELDS(ToRivetResponseChunk, x.body, x.finish)
ENVOY_FIELDS(ToRivetResponseAbort, x.reason)
ENVOY_FIELDS(ToRivetRequestBodyWindowUpdate, x.consumed_bytes)
ENVOY_FIELDS(ToRivetWebSocketOpen, x.can_hibernate)
ENVOY_FIELDS(ToRivetWebSocketMessage, x.data, x.binary)
ENVOY_FIELDS(ToRivetWebSocketMessageAck, x.index)
ENVOY_FIELDS(ToRivetWebSocketClose, x.code, x.reason, x.hibernate)

ENVOY_FIELDS(ToRivetMetadata, x.prepopulate_actor_names, x.metadata)
ENVOY_FIELDS(ToRivetEvents, x.events)
ENVOY_FIELDS(ToRivetAckCommands, x.last_command_checkpoints)
ENVOY_FIELDS(ToRivetPong, x.ts)
ENVOY_FIELDS(ToRivetKvRequest, x.actor_id, x.request_id, x.data)
ENVOY_FIELDS(ToRivetTunnelMessage, x.message_id, x.kind)

ENVOY_FIELDS(ProtocolMetadata, x.envoy_lost_threshold, x.actor_stop_threshold, x.max_response_payload_size)
ENVOY_FIELDS(ToEnvoyInit, x.metadata)
ENVOY_FIELDS(ToEnvoyCommands, x.commands)
ENVOY_FIELDS(ToEnvoyAckEvents, x.last_event_checkpoints)
ENVOY_FIELDS(ToEnvoyKvResponse, x.request_id, x.data)
ENVOY_FIELDS(ToEnvoyTunnelMessage, x.message_id, x.kind)
ENVOY_FIELDS(ToEnvoyPing, x.ts)

#undef ENVOY_FIELDS

template <typename T>
concept Record = requires(T& x) { fields(x); };

// The schema's name of each union and enum, for errors.
template <typename T>
constexpr std::string_view kWireName = {};
template <> constexpr std::string_view kWireName<KvListQuery> = "KvListQuery";
template <> constexpr std::string_view kWireName<KvRequestData> = "KvRequestData";
template <> constexpr std::string_view kWireName<KvResponseData> = "KvResponseData";
template <> constexpr std::string_view kWireName<ActorIntent> = "ActorIntent";
template <> constexpr std::string_view kWireName<ActorState> = "ActorState";
template <> constexpr std::string_view kWireName<Event> = "Event";
template <> constexpr std::string_view kWireName<Command> = "Command";
template <> constexpr std::string_view kWireName<ToEnvoyTunnelKind> = "ToEnvoyTunnelMessageKind";
template <> constexpr std::string_view kWireName<ToRivetTunnelKind> = "ToRivetTunnelMessageKind";
template <> constexpr std::string_view kWireName<ToRivet> = "ToRivet";
template <> constexpr std::string_view kWireName<ToEnvoy> = "ToEnvoy";
template <> constexpr std::string_view kWireName<StopCode> = "StopCode";
template <> constexpr std::string_view kWireName<StopActorReason> = "StopActorReason";
template <> constexpr std::string_view kWireName<AbortReasonKind> = "HttpStreamAbortReasonKind";

// Each enum's last value: a byte above it is not a member.
template <typename E>
constexpr E kLastValue{};
template <> constexpr StopCode kLastValue<StopCode> = StopCode::Error;
template <> constexpr StopActorReason kLastValue<StopActorReason> = StopActorReason::Lost;
template <> constexpr AbortReasonKind kLastValue<AbortReasonKind> = AbortReasonKind::InternalError;

template <typename E>
concept Enum = std::is_enum_v<E>;

template <typename T>
concept Empty = std::is_empty_v<T>;

class Encoder {
 public:
  void put(bool v) { w_.boolean(v); }
  void put(uint16_t v) { w_.u16(v); }
  void put(uint32_t v) { w_.u32(v); }
  void put(int64_t v) { w_.i64(v); }
  void put(uint64_t v) { w_.u64(v); }
  void put(const std::string& s) { w_.string(s); }
  void put(const Bytes& b) { w_.data(b); }
  void put(const FixedId& id) { w_.fixed(id); }
  template <Enum E>
  void put(E e) {
    w_.u8(static_cast<uint8_t>(e));
  }
  template <typename T>
  void put(const std::optional<T>& v) {
    w_.optional_present(v.has_value());
    if (v) put(*v);
  }
  template <typename T>
  void put(const std::vector<T>& list) {
    w_.uint(list.size());
    for (const auto& e : list) put(e);
  }
  template <typename V>
  void put(const std::pair<std::string, V>& entry) {
    put(entry.first);
    put(entry.second);
  }
  template <typename... Ts>
  void put(const std::variant<Ts...>& u) {
    w_.u8(static_cast<uint8_t>(u.index()));
    std::visit([this](const auto& v) { put(v); }, u);
  }
  template <Empty T>
  void put(const T&) {}
  template <Record T>
  void put(const T& x) {
    std::apply([this](const auto&... f) { (put(f), ...); }, fields(x));
  }

  Bytes take() { return w_.take(); }

 private:
  bare::Writer w_;
};

// Reads into the header's types; the first failure sticks in the Reader and
// every later read is a no-op, so a malformed message never loops or
// allocates past its own length.
class Decoder {
 public:
  explicit Decoder(std::span<const uint8_t> in) : r_(in) {}

  void get(bool& v) { v = r_.boolean(); }
  void get(uint16_t& v) { v = r_.u16(); }
  void get(uint32_t& v) { v = r_.u32(); }
  void get(int64_t& v) { v = r_.i64(); }
  void get(uint64_t& v) { v = r_.u64(); }
  void get(std::string& s) { s = r_.string(); }
  void get(Bytes& b) { b = r_.data(); }
  void get(FixedId& id) { r_.fixed(id); }
  template <Enum E>
  void get(E& e) {
    const uint8_t b = r_.u8();
    if (b > static_cast<uint8_t>(kLastValue<E>))
      r_.fail("invalid " + std::string(kWireName<E>) + " " + std::to_string(b));
    else
      e = static_cast<E>(b);
  }
  template <typename T>
  void get(std::optional<T>& v) {
    if (r_.optional_present())
      get(v.emplace());
    else
      v.reset();
  }
  template <typename T>
  void get(std::vector<T>& list) {
    get_list(list);
  }
  // A map: a list of entries in which a key may appear once (as the
  // reference decoder insists).
  template <typename V>
  void get(std::vector<std::pair<std::string, V>>& map) {
    get_list(map);
    std::vector<std::string_view> keys;
    keys.reserve(map.size());
    for (const auto& entry : map) keys.push_back(entry.first);
    std::sort(keys.begin(), keys.end());
    if (auto dup = std::adjacent_find(keys.begin(), keys.end()); dup != keys.end())
      r_.fail("duplicate map key `" + std::string(*dup) + "`");
  }
  template <typename V>
  void get(std::pair<std::string, V>& entry) {
    get(entry.first);
    get(entry.second);
  }
  template <typename... Ts>
  void get(std::variant<Ts...>& u) {
    const uint8_t tag = r_.u8();
    if (!r_.ok()) return;
    if (tag >= sizeof...(Ts)) {
      r_.fail("unknown " + std::string(kWireName<std::variant<Ts...>>) + " tag " + std::to_string(tag));
      return;
    }
    [&]<size_t... I>(std::index_sequence<I...>) {
      ((tag == I ? get(u.template emplace<I>()) : void()), ...);
    }(std::index_sequence_for<Ts...>{});
  }
  template <Empty T>
  void get(T&) {}
  template <Record T>
  void get(T& x) {
    std::apply([this](auto&... f) { (get(f), ...); }, fields(x));
  }

  template <typename Msg>
  Result<Msg> finish(Msg msg) {
    if (r_.ok() && !r_.at_end()) r_.fail("trailing bytes");
    if (!r_.ok()) return invalid<Msg>(r_.error());
    return msg;
  }

  template <typename Msg>
  static Error invalid(const std::string& why) {
    return make_error("envoy", "invalid_message", "Invalid " + std::string(kWireName<Msg>) + " message: " + why + ".");
  }

 private:
  template <typename T>
  void get_list(std::vector<T>& list) {
    list.clear();
    const uint64_t n = r_.count();  // bounded by the bytes left
    for (uint64_t i = 0; i < n && r_.ok(); ++i) get(list.emplace_back());
  }

  bare::Reader r_;
};

template <typename Msg>
Bytes encode_message(const Msg& msg) {
  Encoder e;
  e.put(msg);
  return e.take();
}

// The SQLite messages sit at the end of both top-level unions; Anvil keeps
// its SQLite local, so it neither sends nor expects them.
template <typename Msg>
Result<Msg> decode_message(std::span<const uint8_t> bytes, uint8_t first_sqlite, uint8_t last_sqlite) {
  if (!bytes.empty() && bytes[0] >= first_sqlite && bytes[0] <= last_sqlite)
    return Decoder::invalid<Msg>("tag " + std::to_string(bytes[0]) + " is a SQLite message, which Anvil does not use");
  Decoder d(bytes);
  Msg msg;
  d.get(msg);
  return d.finish(std::move(msg));
}

}  // namespace

Bytes encode(const ToRivet& msg) { return encode_message(msg); }
Bytes encode(const ToEnvoy& msg) { return encode_message(msg); }

Result<ToRivet> decode_to_rivet(std::span<const uint8_t> bytes) { return decode_message<ToRivet>(bytes, 7, 14); }
Result<ToEnvoy> decode_to_envoy(std::span<const uint8_t> bytes) { return decode_message<ToEnvoy>(bytes, 6, 13); }

}  // namespace anvil::envoy
