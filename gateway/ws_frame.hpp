// Server-side WebSocket framing (RFC 6455 §5) for the connection protocol's
// hot path: the gateway reads whatever the socket has, decodes every complete
// frame in it, and writes all queued replies with one gathered write (Beast's
// stream writes one message per call; see docs/protocol-notes.md). Pure: bytes
// in, messages out; no extensions are negotiated, so RSV bits must be 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace anvil::gateway::wsframe {

enum Opcode : uint8_t { kContinuation = 0x0, kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA };

// One event decoded from the client's byte stream.
struct Event {
  enum Kind { Message, Ping, Pong, Close } kind = Message;
  bool text = false;     // Message: a text (vs binary) message
  std::string payload;   // Message/Ping/Pong: the unmasked bytes; Close: the reason
  uint16_t close_code = 1005;  // Close: the peer's code (1005 = none given)
};

// A protocol violation: the connection ends with this close code.
struct Violation {
  uint16_t code;
  std::string reason;
};

// Accumulates client bytes and yields complete messages (fragments are
// joined; control frames may come between fragments).
class Decoder {
 public:
  explicit Decoder(size_t max_message_bytes) : max_message_(max_message_bytes) {}

  // Appends bytes read from the socket.
  void feed(std::span<const uint8_t> bytes);
  // The next complete event, nullopt if more bytes are needed. After a
  // Violation the decoder is dead and keeps returning it.
  std::optional<Event> next();
  const std::optional<Violation>& violation() const { return violation_; }

 private:
  std::optional<Event> fail(uint16_t code, std::string reason);

  size_t max_message_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;  // start of the first undecoded frame in buf_
  // A fragmented message being assembled.
  bool in_message_ = false;
  bool message_text_ = false;
  std::string message_;
  std::optional<Violation> violation_;
};

// Appends one unmasked server frame (FIN set) to `out`.
void append_frame(std::string& out, Opcode op, std::string_view payload);
// A close frame's payload: 2-byte code + reason (reason cut to fit 123 bytes).
std::string close_payload(uint16_t code, std::string_view reason);
// Whether `s` is well-formed UTF-8 (text messages must be, §8.1).
bool valid_utf8(std::string_view s);

}  // namespace anvil::gateway::wsframe
