// The WebSocket frame decoder (gateway/ws_frame.hpp) on a client byte stream.
// Input: byte 0 picks the message size limit, byte 1 the chunk size the
// stream is fed in, the rest is the stream. Checks: the same stream fed in
// one piece and in chunks gives the same events and the same violation;
// messages respect the limit, text messages and close reasons are UTF-8;
// a dead decoder stays dead; each message, framed again as a client would
// (masked, in fragments), decodes to itself.
#include <string>
#include <vector>

#include "gateway/ws_frame.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace anvil;
using namespace anvil::gateway::wsframe;

namespace {

struct Outcome {
  std::vector<Event> events;
  std::optional<Violation> violation;
};

Outcome decode(size_t limit, std::span<const uint8_t> stream, size_t chunk) {
  Decoder d(limit);
  Outcome out;
  size_t at = 0;
  do {
    size_t n = std::min(chunk, stream.size() - at);
    d.feed(stream.subspan(at, n));
    at += n;
    while (auto ev = d.next()) out.events.push_back(std::move(*ev));
  } while (at < stream.size() && !d.violation());
  out.violation = d.violation();
  if (out.violation) {
    FUZZ_CHECK(!d.next().has_value());
    FUZZ_CHECK(d.violation() && d.violation()->code == out.violation->code);
  }
  return out;
}

// A masked client frame.
void client_frame(std::string& out, uint8_t op, bool fin, std::string_view payload, uint32_t mask) {
  std::string unmasked;
  append_frame(unmasked, static_cast<Opcode>(op), payload);
  unmasked[0] = static_cast<char>((fin ? 0x80 : 0) | op);
  size_t hdr = unmasked.size() - payload.size();
  unmasked[1] = static_cast<char>(unmasked[1] | 0x80);
  out.append(unmasked, 0, hdr);
  uint8_t key[4] = {uint8_t(mask >> 24), uint8_t(mask >> 16), uint8_t(mask >> 8), uint8_t(mask)};
  out.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i) out.push_back(static_cast<char>(payload[i] ^ key[i & 3]));
}

bool same(const Event& a, const Event& b) {
  return a.kind == b.kind && a.text == b.text && a.payload == b.payload && a.close_code == b.close_code;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  return fuzz::run([&] {
    const size_t limit = size_t{1} << (data[0] % 21);  // 1 B .. 1 MiB
    const size_t chunk = 1 + data[1] % 16;
    std::span<const uint8_t> stream(data + 2, size - 2);

    Outcome whole = decode(limit, stream, stream.size() + 1);
    Outcome pieces = decode(limit, stream, chunk);
    FUZZ_CHECK(whole.events.size() == pieces.events.size());
    for (size_t i = 0; i < whole.events.size(); ++i) FUZZ_CHECK(same(whole.events[i], pieces.events[i]));
    FUZZ_CHECK(whole.violation.has_value() == pieces.violation.has_value());
    if (whole.violation) {
      FUZZ_CHECK(whole.violation->code == pieces.violation->code, whole.violation->reason);
      FUZZ_CHECK(!whole.violation->reason.empty());
    }

    for (const Event& ev : whole.events) {
      if (ev.kind == Event::Message) {
        FUZZ_CHECK(ev.payload.size() <= limit);
        if (ev.text) FUZZ_CHECK(valid_utf8(ev.payload));
        // Reframed in up to three fragments with a ping between them.
        std::string again;
        const size_t cut1 = ev.payload.size() / 3, cut2 = 2 * ev.payload.size() / 3;
        client_frame(again, ev.text ? kText : kBinary, false, std::string_view(ev.payload).substr(0, cut1), 0x01020304);
        client_frame(again, kPing, true, "p", 0xdeadbeef);
        client_frame(again, kContinuation, false, std::string_view(ev.payload).substr(cut1, cut2 - cut1), 0);
        client_frame(again, kContinuation, true, std::string_view(ev.payload).substr(cut2), 0xffffffff);
        Outcome re = decode(limit, {reinterpret_cast<const uint8_t*>(again.data()), again.size()}, again.size());
        FUZZ_CHECK(!re.violation && re.events.size() == 2);
        FUZZ_CHECK(re.events[0].kind == Event::Ping && re.events[0].payload == "p");
        FUZZ_CHECK(same(re.events[1], ev));
      } else if (ev.kind == Event::Close) {
        FUZZ_CHECK(valid_utf8(ev.payload) && ev.payload.size() <= 123);
        std::string p = close_payload(ev.close_code, ev.payload);
        FUZZ_CHECK(p.size() == ev.payload.size() + 2);
      } else {
        FUZZ_CHECK(ev.payload.size() <= 125);
      }
    }
  });
}
