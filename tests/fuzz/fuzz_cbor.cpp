// cbor::decode in its three modes: Envelope (HTTP bodies / WebSocket frames
// with encoding "cbor"), Compat (BARE `data` fields, rvt-input, `input`) and
// Storage (Anvil's own records, read back from RocksDB). Checks: rejection
// is actor.invalid_request; whatever decodes re-encodes, decodes again (an
// envelope as the client reads it, with revival), and the encoding is a
// fixpoint; Storage round-trips exactly; every decoded
// value can also be answered in JSON.
#include "base/value/cbor.hpp"
#include "base/value/json.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace anvil;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::run([&] {
    std::span<const uint8_t> in(data, size);
    for (cbor::Mode mode : {cbor::Mode::Envelope, cbor::Mode::Compat, cbor::Mode::Storage}) {
      auto v = cbor::decode(in, mode);
      if (!v.ok()) {
        fuzz::check_invalid_request(v.error());
        continue;
      }
      Bytes once = cbor::encode(*v, mode);
      // Envelope encoding escapes a user pair that looks like a tag
      // (["$x", v] -> ["$$x", v]) for the client, which revives it; the
      // envelope decoder itself does not revive (values are revived where
      // they are read). So an envelope's fixpoint is read as the client
      // reads it: with compat revival.
      const cbor::Mode read_as = mode == cbor::Mode::Envelope ? cbor::Mode::Compat : mode;
      auto back = cbor::decode(once, read_as);
      FUZZ_CHECK(back.ok(), back.ok() ? "" : back.error().message);
      FUZZ_CHECK(cbor::encode(*back, mode) == once);
      if (mode == cbor::Mode::Storage) FUZZ_CHECK(fuzz::identical(*back, *v), debug_string(*v));
      auto j = json::parse(json::dump(*v), /*revive=*/true);
      FUZZ_CHECK(j.ok(), json::dump(*v));
    }
  });
}
