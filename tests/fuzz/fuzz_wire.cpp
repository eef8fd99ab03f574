// The client-protocol messages the gateway decodes (client-protocol.md §4–§6):
// HTTP action bodies, queue sends and WebSocket ToServer frames, in json,
// cbor and bare. The first input byte picks the encoding, the rest is the
// body/frame. Checks: a rejection is actor.invalid_request; an accepted
// ToServer message, re-encoded as the client would send it, decodes to the
// same message; accepted action args survive a re-encode.
#include "base/value/cbor.hpp"
#include "base/value/json.hpp"
#include "gateway/codec/wire.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace anvil;

namespace {

Bytes envelope(wire::Encoding e, const Value& v) {
  if (e == wire::Encoding::Json) {
    std::string s = json::dump(v);
    return Bytes(s.begin(), s.end());
  }
  return cbor::encode(v, cbor::Mode::Envelope);
}

// What rivetkit's client sends for a ToServer message (json/cbor).
Value client_message(const wire::ToServer& m) {
  if (auto* a = std::get_if<wire::ActionRequest>(&m))
    return obj({{"body", obj({{"tag", "ActionRequest"},
                              {"val", obj({{"id", BigInt{false, a->id}}, {"name", a->name}, {"args", a->args}})}})}});
  auto& s = std::get<wire::SubscriptionRequest>(m);
  return obj({{"body", obj({{"tag", "SubscriptionRequest"},
                            {"val", obj({{"eventName", s.event_name}, {"subscribe", s.subscribe}})}})}});
}

bool exact_in(wire::Encoding e, const Value& v) { return e != wire::Encoding::Json || fuzz::json_exact(v); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  return fuzz::run([&] {
    const auto e = static_cast<wire::Encoding>(data[0] % 3);
    std::span<const uint8_t> body(data + 1, size - 1);

    auto args = wire::decode_action_request(e, body);
    if (!args.ok()) fuzz::check_invalid_request(args.error());

    auto q = wire::decode_queue_send(e, body);
    if (!q.ok()) fuzz::check_invalid_request(q.error());

    auto m = wire::decode_to_server(e, body);
    if (!m.ok()) {
      fuzz::check_invalid_request(m.error());
    } else if (e != wire::Encoding::Bare) {
      Value sent = client_message(*m);
      auto back = wire::decode_to_server(e, envelope(e, sent));
      FUZZ_CHECK(back.ok(), back.ok() ? "" : back.error().message);
      FUZZ_CHECK(back->index() == m->index());
      if (auto* a = std::get_if<wire::ActionRequest>(&*m)) {
        auto& b = std::get<wire::ActionRequest>(*back);
        FUZZ_CHECK(a->id == b.id && a->name == b.name);
        if (exact_in(e, Value(a->args))) FUZZ_CHECK(Value(a->args) == Value(b.args), debug_string(Value(a->args)));
      } else {
        auto& s = std::get<wire::SubscriptionRequest>(*m);
        auto& t = std::get<wire::SubscriptionRequest>(*back);
        FUZZ_CHECK(s.event_name == t.event_name && s.subscribe == t.subscribe);
      }
    }
  });
}
