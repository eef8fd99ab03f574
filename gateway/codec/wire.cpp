#include "gateway/codec/wire.hpp"

#include <cmath>
#include <limits>

#include "gateway/codec/bare.hpp"
#include "base/value/cbor.hpp"
#include "base/value/json.hpp"

namespace anvil::wire {
namespace {

Error invalid(std::string why) { return make_error("actor", "invalid_request", std::move(why)); }

std::string_view as_text(std::span<const uint8_t> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Parses a json/cbor envelope into a Value (json with compat revival).
Result<Value> decode_envelope(Encoding e, std::span<const uint8_t> body) {
  if (e == Encoding::Json) return json::parse(as_text(body), /*revive=*/true);
  return cbor::decode(body, cbor::Mode::Envelope);
}

Bytes encode_envelope(Encoding e, const Value& v) {
  if (e == Encoding::Json) return bytes_of(json::dump(v));
  return cbor::encode(v, cbor::Mode::Envelope);
}

// The BARE version prefix; the client sends 4 and we accept down to
// `oldest` (messages whose shape did not change across versions).
bool read_version(bare::Reader& r, uint16_t oldest = 1) {
  uint16_t v = r.u16();
  if (r.ok() && (v < oldest || v > kBareVersion)) r.fail("unsupported protocol version " + std::to_string(v));
  return r.ok();
}

Result<Value> read_cbor_data(bare::Reader& r) {
  Bytes d = r.data();
  if (!r.ok()) return invalid("Invalid BARE: " + r.error());
  return cbor::decode(d, cbor::Mode::Compat);
}

void write_cbor_data(bare::Writer& w, const Value& v) { w.data(cbor::encode(v, cbor::Mode::Compat)); }

// Protocol integers (ids) as json/cbor want them: a bigint.
Value protocol_uint(uint64_t n) { return Value(BigInt{false, n}); }

// A protocol integer (id, actionId): bigint (json ["$BigInt","n"] / cbor
// `1b`) or, leniently, a plain non-negative integral number.
Result<uint64_t> read_protocol_uint(const Value* v, const char* what) {
  if (!v) return invalid(std::string("missing ") + what);
  if (v->is_bigint() && !v->as_bigint().negative) return v->as_bigint().magnitude;
  if (v->is_int() && v->as_int() >= 0) return static_cast<uint64_t>(v->as_int());
  if (v->is_double()) {
    double d = v->as_double();
    if (d >= 0 && d < 18446744073709551616.0 && d == std::trunc(d)) return static_cast<uint64_t>(d);
  }
  return invalid(std::string("invalid ") + what);
}

// Queue `timeout` (ms): the client sends any JS number; negative => 0,
// fractions are dropped, huge values saturate.
Result<uint64_t> read_timeout(const Value& v) {
  if (v.is_bigint()) return v.as_bigint().negative ? uint64_t{0} : v.as_bigint().magnitude;
  if (v.is_int()) return v.as_int() < 0 ? uint64_t{0} : static_cast<uint64_t>(v.as_int());
  if (v.is_double() && !std::isnan(v.as_double())) {
    double d = v.as_double();
    if (d <= 0) return uint64_t{0};
    if (d >= 18446744073709551616.0) return std::numeric_limits<uint64_t>::max();
    return static_cast<uint64_t>(d);
  }
  return invalid("timeout must be a number");
}

Value actor_json(const ActorSpecifier& a, bool bigint_generation) {
  Object o{{"actorId", a.actor_id},
           {"generation", bigint_generation ? protocol_uint(a.generation) : Value(static_cast<int64_t>(a.generation))}};
  if (a.key) o.emplace_back("key", *a.key);
  return Value(std::move(o));
}

void write_actor(bare::Writer& w, const std::optional<ActorSpecifier>& a) {
  w.optional_present(a.has_value());
  if (!a) return;
  w.string(a->actor_id);
  w.uint(a->generation);
  w.optional_present(a->key.has_value());
  if (a->key) w.string(*a->key);
}

void write_metadata(bare::Writer& w, const std::optional<Value>& m) {
  w.optional_present(m.has_value());
  if (m) write_cbor_data(w, *m);
}

}  // namespace

std::optional<Encoding> parse_encoding(std::string_view s) {
  if (s == "json") return Encoding::Json;
  if (s == "cbor") return Encoding::Cbor;
  if (s == "bare") return Encoding::Bare;
  return std::nullopt;
}

std::string_view encoding_name(Encoding e) {
  switch (e) {
    case Encoding::Json: return "json";
    case Encoding::Cbor: return "cbor";
    case Encoding::Bare: return "bare";
  }
  return "json";
}

std::string_view content_type(Encoding e) {
  return e == Encoding::Json ? "application/json" : "application/octet-stream";
}

Result<Array> decode_action_request(Encoding e, std::span<const uint8_t> body) {
  if (e == Encoding::Bare) {
    bare::Reader r(body);
    if (!read_version(r)) return invalid("Invalid BARE: " + r.error());
    auto args = read_cbor_data(r);
    if (!args.ok()) return args.error();
    if (auto st = r.finish(); !st.ok()) return st.error();
    if (!args->is_array()) return invalid("action args must be an array");
    return std::move(args->as_array());
  }
  if (body.empty() && e == Encoding::Json) return Array{};
  auto v = decode_envelope(e, body);
  if (!v.ok()) return v.error();
  if (e == Encoding::Json && v->is_array()) return std::move(v->as_array());
  if (!v->is_object()) {
    if (e == Encoding::Json) {
      if (v->is_nullish()) return Array{};
      return Array{std::move(*v)};
    }
    return invalid("action request must be a map {args}");
  }
  Value* args = v->find("args");
  if (!args || args->is_nullish()) return Array{};
  if (args->is_array()) return std::move(args->as_array());
  if (e == Encoding::Json) return Array{std::move(*args)};
  return invalid("args must be an array");
}

Bytes encode_action_response(Encoding e, const Value& output) {
  if (e == Encoding::Bare) {
    bare::Writer w;
    w.u16(kBareVersion);
    write_cbor_data(w, output);
    return w.take();
  }
  return encode_envelope(e, obj({{"output", output}}));
}

Bytes encode_http_error(Encoding e, const Error& err, const std::optional<ActorSpecifier>& actor) {
  if (e == Encoding::Bare) {
    bare::Writer w;
    w.u16(kBareVersion);
    w.string(err.group);
    w.string(err.code);
    w.string(err.message);
    write_metadata(w, err.metadata);
    write_actor(w, actor);
    return w.take();
  }
  Object o{{"group", err.group}, {"code", err.code}, {"message", err.message}};
  if (err.metadata) o.emplace_back("metadata", *err.metadata);
  if (actor) o.emplace_back("actor", actor_json(*actor, false));
  return encode_envelope(e, Value(std::move(o)));
}

Result<QueueSendRequest> decode_queue_send(Encoding e, std::span<const uint8_t> body) {
  QueueSendRequest q;
  if (e == Encoding::Bare) {
    bare::Reader r(body);
    if (!read_version(r, 3)) return invalid("Invalid BARE: " + r.error());  // queues exist since v3
    auto b = read_cbor_data(r);
    if (!b.ok()) return b.error();
    q.body = std::move(*b);
    if (r.optional_present()) q.name = r.string();
    if (r.optional_present()) q.wait = r.boolean();
    if (r.optional_present()) q.timeout_ms = r.u64();
    if (auto st = r.finish(); !st.ok()) return st.error();
    return q;
  }
  auto v = decode_envelope(e, body);
  if (!v.ok()) return v.error();
  if (!v->is_object()) return invalid("queue send must be a map {body, name, wait, timeout}");
  if (const Value* b = v->find("body")) q.body = *b;
  else q.body = Value(Undefined{});
  if (const Value* n = v->find("name"); n && !n->is_nullish()) {
    if (!n->is_string()) return invalid("queue name must be a string");
    q.name = n->as_string();
  }
  if (const Value* w = v->find("wait"); w && !w->is_nullish()) {
    if (!w->is_bool()) return invalid("wait must be a boolean");
    q.wait = w->as_bool();
  }
  if (const Value* t = v->find("timeout"); t && !t->is_nullish()) {
    auto ms = read_timeout(*t);
    if (!ms.ok()) return ms.error();
    q.timeout_ms = *ms;
  }
  return q;
}

Bytes encode_queue_send_response(Encoding e, const QueueSendResponse& r) {
  if (e == Encoding::Bare) {
    bare::Writer w;
    w.u16(kBareVersion);
    w.string(r.status);
    w.optional_present(r.response.has_value());
    if (r.response) write_cbor_data(w, *r.response);
    return w.take();
  }
  Object o{{"status", r.status}};
  if (r.response) o.emplace_back("response", *r.response);
  return encode_envelope(e, Value(std::move(o)));
}

Result<ToServer> decode_to_server(Encoding e, std::span<const uint8_t> frame) {
  if (e == Encoding::Bare) {
    bare::Reader r(frame);
    if (!read_version(r)) return invalid("Invalid BARE: " + r.error());
    uint8_t tag = r.u8();
    if (!r.ok()) return invalid("Invalid BARE: " + r.error());
    if (tag == 0) {
      ActionRequest a;
      a.id = r.uint();
      a.name = r.string();
      auto args = read_cbor_data(r);
      if (!args.ok()) return args.error();
      if (auto st = r.finish(); !st.ok()) return st.error();
      if (!args->is_array()) return invalid("action args must be an array");
      a.args = std::move(args->as_array());
      return ToServer(std::move(a));
    }
    if (tag == 1) {
      SubscriptionRequest s;
      s.event_name = r.string();
      s.subscribe = r.boolean();
      if (auto st = r.finish(); !st.ok()) return st.error();
      return ToServer(std::move(s));
    }
    return invalid("unknown ToServer tag " + std::to_string(tag));
  }
  auto v = decode_envelope(e, frame);
  if (!v.ok()) return v.error();
  const Value* body = v->find("body");
  if (!body || !body->is_object()) return invalid("message must be {body:{tag,val}}");
  const Value* tag = body->find("tag");
  const Value* val = body->find("val");
  if (!tag || !tag->is_string() || !val || !val->is_object()) return invalid("message must be {body:{tag,val}}");
  if (tag->as_string() == "ActionRequest") {
    ActionRequest a;
    auto id = read_protocol_uint(val->find("id"), "id");
    if (!id.ok()) return id.error();
    a.id = *id;
    const Value* name = val->find("name");
    if (!name || !name->is_string()) return invalid("action name must be a string");
    a.name = name->as_string();
    const Value* args = val->find("args");
    if (args && args->is_array()) a.args = args->as_array();
    else if (args && !args->is_nullish()) return invalid("args must be an array");
    return ToServer(std::move(a));
  }
  if (tag->as_string() == "SubscriptionRequest") {
    SubscriptionRequest s;
    const Value* name = val->find("eventName");
    const Value* sub = val->find("subscribe");
    if (!name || !name->is_string() || !sub || !sub->is_bool()) return invalid("bad SubscriptionRequest");
    s.event_name = name->as_string();
    s.subscribe = sub->as_bool();
    return ToServer(std::move(s));
  }
  return invalid("unknown message tag `" + tag->as_string() + "`");
}

Bytes encode_to_client(Encoding e, const ToClient& msg) {
  if (e == Encoding::Bare) {
    bare::Writer w;
    w.u16(kBareVersion);
    std::visit(
        [&](const auto& m) {
          using T = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<T, InitMsg>) {
            w.u8(0);
            w.string(m.actor_id);
            w.string(m.connection_id);
          } else if constexpr (std::is_same_v<T, ErrorMsg>) {
            w.u8(1);
            w.string(m.error.group);
            w.string(m.error.code);
            w.string(m.error.message);
            write_metadata(w, m.error.metadata);
            w.optional_present(m.action_id.has_value());
            if (m.action_id) w.uint(*m.action_id);
            write_actor(w, m.actor);
          } else if constexpr (std::is_same_v<T, ActionResponseMsg>) {
            w.u8(2);
            w.uint(m.id);
            write_cbor_data(w, m.output);
          } else {
            w.u8(3);
            w.string(m.name);
            write_cbor_data(w, Value(m.args));
          }
        },
        msg);
    return w.take();
  }
  Value body = std::visit(
      [&](const auto& m) -> Value {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, InitMsg>) {
          return obj({{"tag", "Init"}, {"val", obj({{"actorId", m.actor_id}, {"connectionId", m.connection_id}})}});
        } else if constexpr (std::is_same_v<T, ErrorMsg>) {
          Object val{{"group", m.error.group}, {"code", m.error.code}, {"message", m.error.message}};
          if (m.error.metadata) val.emplace_back("metadata", *m.error.metadata);
          // Same key order as the real runtime's CBOR frames (captures).
          if (m.actor) val.emplace_back("actor", actor_json(*m.actor, e == Encoding::Cbor));
          val.emplace_back("actionId", m.action_id ? protocol_uint(*m.action_id) : Value());
          return obj({{"tag", "Error"}, {"val", Value(std::move(val))}});
        } else if constexpr (std::is_same_v<T, ActionResponseMsg>) {
          return obj({{"tag", "ActionResponse"}, {"val", obj({{"id", protocol_uint(m.id)}, {"output", m.output}})}});
        } else {
          return obj({{"tag", "Event"}, {"val", obj({{"name", m.name}, {"args", Value(m.args)}})}});
        }
      },
      msg);
  return encode_envelope(e, obj({{"body", std::move(body)}}));
}

}  // namespace anvil::wire
