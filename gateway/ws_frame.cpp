#include "gateway/ws_frame.hpp"

#include <algorithm>
#include <cstring>

namespace anvil::gateway::wsframe {

namespace {

bool valid_close_code(uint16_t c) {
  if (c >= 3000 && c <= 4999) return true;
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011);
}

}  // namespace

void Decoder::feed(std::span<const uint8_t> bytes) {
  const size_t old = buf_.size();
  buf_.resize(old + bytes.size());
  if (!bytes.empty()) std::memcpy(buf_.data() + old, bytes.data(), bytes.size());
}

std::optional<Event> Decoder::fail(uint16_t code, std::string reason) {
  violation_ = Violation{code, std::move(reason)};
  buf_.clear();
  pos_ = 0;
  return std::nullopt;
}

std::optional<Event> Decoder::next() {
  for (;;) {
    if (violation_) return std::nullopt;
    const size_t avail = buf_.size() - pos_;
    const uint8_t* p = buf_.data() + pos_;
    auto need_more = [&]() -> std::optional<Event> {
      // Keep only the undecoded tail; decoded frames are dropped in bulk.
      if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
      } else if (pos_ >= 64 * 1024) {
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
        pos_ = 0;
      }
      return std::nullopt;
    };
    if (avail < 2) return need_more();
    const bool fin = p[0] & 0x80;
    const uint8_t op = p[0] & 0x0f;
    const bool masked = p[1] & 0x80;
    uint64_t len = p[1] & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) return need_more();
      len = (uint64_t{p[2]} << 8) | p[3];
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) return need_more();
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      hdr = 10;
    }
    if (p[0] & 0x70) return fail(1002, "reserved bits set");
    if (!masked) return fail(1002, "client frames must be masked");
    const bool control = op & 0x8;
    if (control) {
      if (op != kClose && op != kPing && op != kPong) return fail(1002, "unknown opcode");
      if (!fin) return fail(1002, "fragmented control frame");
      if (len > 125) return fail(1002, "control frame too long");
    } else {
      if (op != kContinuation && op != kText && op != kBinary) return fail(1002, "unknown opcode");
      if (op == kContinuation && !in_message_) return fail(1002, "continuation without a message");
      if (op != kContinuation && in_message_) return fail(1002, "new message inside a fragmented one");
      // Refused from the header: an oversized message is never buffered.
      const uint64_t so_far = op == kContinuation ? message_.size() : 0;
      if (len > max_message_ || so_far + len > max_message_) return fail(1009, "message too big");
    }
    hdr += 4;  // masking key
    if (avail < hdr || avail - hdr < len) return need_more();
    const uint8_t* key = p + hdr - 4;
    const uint8_t* data = p + hdr;
    std::string payload(static_cast<size_t>(len), '\0');
    for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(data[i] ^ key[i & 3]);
    pos_ += hdr + static_cast<size_t>(len);

    if (control) {
      Event ev;
      if (op == kPing) {
        ev.kind = Event::Ping;
        ev.payload = std::move(payload);
      } else if (op == kPong) {
        ev.kind = Event::Pong;
        ev.payload = std::move(payload);
      } else {
        ev.kind = Event::Close;
        if (payload.size() == 1) return fail(1002, "close frame with a 1-byte payload");
        if (payload.size() >= 2) {
          ev.close_code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]));
          if (!valid_close_code(ev.close_code)) return fail(1002, "invalid close code");
          ev.payload = payload.substr(2);
          if (!valid_utf8(ev.payload)) return fail(1007, "close reason is not UTF-8");
        }
      }
      return ev;
    }
    if (op != kContinuation) {
      in_message_ = true;
      message_text_ = op == kText;
      message_.clear();
    }
    if (message_.empty())
      message_ = std::move(payload);
    else
      message_ += payload;
    if (!fin) continue;
    in_message_ = false;
    Event ev;
    ev.kind = Event::Message;
    ev.text = message_text_;
    ev.payload = std::move(message_);
    message_.clear();
    if (ev.text && !valid_utf8(ev.payload)) return fail(1007, "text message is not UTF-8");
    return ev;
  }
}

void append_frame(std::string& out, Opcode op, std::string_view payload) {
  const uint64_t n = payload.size();
  out.push_back(static_cast<char>(0x80 | op));
  if (n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (i * 8)) & 0xff));
  }
  out.append(payload);
}

std::string close_payload(uint16_t code, std::string_view reason) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xff));
  // A control frame carries at most 125 bytes; cut on a character boundary.
  size_t n = std::min<size_t>(reason.size(), 123);
  while (n > 0 && n < reason.size() && (static_cast<uint8_t>(reason[n]) & 0xc0) == 0x80) --n;
  p.append(reason.substr(0, n));
  return p;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const uint8_t cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;  // overlong
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

}  // namespace anvil::gateway::wsframe
