// BARE: the primitive Reader (driven by the input: each step reads an op
// byte, then that primitive) and the client-protocol messages a BARE client
// sends (HttpActionRequest, HttpQueueSendRequest, ToServer). Checks: a
// rejection is actor.invalid_request; the Reader accepts only canonical
// encodings, so writing back what it read reproduces the bytes it consumed;
// an action request re-encoded from its decoded args decodes to the same args.
#include "base/value/cbor.hpp"
#include "gateway/codec/bare.hpp"
#include "gateway/codec/wire.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace anvil;

namespace {

void primitives(std::span<const uint8_t> in) {
  bare::Reader r(in);
  bare::Writer w;
  size_t steps = 0;
  while (r.ok() && !r.at_end() && steps++ < 256) {
    uint8_t op = r.u8();
    bare::Writer step;
    step.u8(op);
    switch (op % 8) {
      case 0: step.u8(r.u8()); break;
      case 1: step.u16(r.u16()); break;
      case 2: step.u64(r.u64()); break;
      case 3: step.uint(r.uint()); break;
      case 4: step.boolean(r.boolean()); break;
      case 5: step.string(r.string()); break;
      case 6: { Bytes d = r.data(); step.data(d); break; }
      case 7: step.optional_present(r.optional_present()); break;
    }
    if (!r.ok()) break;
    for (uint8_t b : step.bytes()) w.u8(b);
  }
  if (r.ok()) {
    FUZZ_CHECK(w.bytes().size() <= in.size());
    FUZZ_CHECK(std::equal(w.bytes().begin(), w.bytes().end(), in.begin()), "re-encoding differs");
  } else {
    FUZZ_CHECK(!r.error().empty());
    auto st = r.finish();
    FUZZ_CHECK(!st.ok());
    fuzz::check_invalid_request(st.error());
  }
}

void messages(std::span<const uint8_t> in) {
  auto args = wire::decode_action_request(wire::Encoding::Bare, in);
  if (!args.ok()) {
    fuzz::check_invalid_request(args.error());
  } else {
    bare::Writer w;
    w.u16(wire::kBareVersion);
    w.data(cbor::encode(Value(*args), cbor::Mode::Compat));
    auto again = wire::decode_action_request(wire::Encoding::Bare, w.bytes());
    FUZZ_CHECK(again.ok(), again.ok() ? "" : again.error().message);
    FUZZ_CHECK(cbor::encode(Value(*again), cbor::Mode::Compat) == cbor::encode(Value(*args), cbor::Mode::Compat));
  }
  auto q = wire::decode_queue_send(wire::Encoding::Bare, in);
  if (!q.ok()) fuzz::check_invalid_request(q.error());
  auto m = wire::decode_to_server(wire::Encoding::Bare, in);
  if (!m.ok()) fuzz::check_invalid_request(m.error());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::run([&] {
    std::span<const uint8_t> in(data, size);
    primitives(in);
    messages(in);
  });
}
