#include "gateway/codec/bare.hpp"

#include <algorithm>

#include "base/value/detail.hpp"

namespace anvil::bare {

void Writer::u8(uint8_t v) { out_.push_back(v); }
void Writer::u16(uint16_t v) {
  out_.push_back(static_cast<uint8_t>(v));
  out_.push_back(static_cast<uint8_t>(v >> 8));
}
void Writer::u32(uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (i * 8)));
}
void Writer::u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<uint8_t>(v >> (i * 8)));
}
void Writer::uint(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<uint8_t>(v));
}
void Writer::boolean(bool v) { out_.push_back(v ? 1 : 0); }
void Writer::string(std::string_view s) {
  uint(s.size());
  out_.insert(out_.end(), s.begin(), s.end());
}
void Writer::data(std::span<const uint8_t> d) {
  uint(d.size());
  fixed(d);
}
void Writer::fixed(std::span<const uint8_t> d) { out_.insert(out_.end(), d.begin(), d.end()); }

void Reader::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
}

bool Reader::need(size_t n) {
  if (!ok()) return false;
  if (in_.size() - pos_ < n) {
    fail("truncated BARE message");
    return false;
  }
  return true;
}

uint8_t Reader::u8() { return need(1) ? in_[pos_++] : 0; }

uint64_t Reader::little_endian(size_t width) {
  if (!need(width)) return 0;
  uint64_t v = 0;
  for (size_t i = width; i-- > 0;) v = (v << 8) | in_[pos_ + i];
  pos_ += width;
  return v;
}

uint16_t Reader::u16() { return static_cast<uint16_t>(little_endian(2)); }
uint32_t Reader::u32() { return static_cast<uint32_t>(little_endian(4)); }
uint64_t Reader::u64() { return little_endian(8); }

uint64_t Reader::uint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (!need(1)) return 0;
    uint8_t b = in_[pos_++];
    if (shift == 63 && b > 1) {
      fail("varint overflows u64");
      return 0;
    }
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      if (b == 0 && shift > 0) fail("non-canonical varint");
      return v;
    }
  }
  fail("varint too long");
  return 0;
}

uint64_t Reader::count() {
  uint64_t n = uint();
  if (ok() && n > in_.size() - pos_) {
    fail("list length " + std::to_string(n) + " exceeds the message");
    return 0;
  }
  return n;
}

bool Reader::boolean() {
  uint8_t b = u8();
  if (b > 1) fail("invalid bool");
  return b == 1;
}

bool Reader::optional_present() {
  uint8_t b = u8();
  if (b > 1) fail("invalid optional tag");
  return b == 1;
}

std::string Reader::string() {
  uint64_t n = uint();
  if (!ok() || !need(n)) return {};
  std::string s(reinterpret_cast<const char*>(in_.data() + pos_), n);
  pos_ += n;
  if (!detail::valid_utf8(s)) fail("invalid UTF-8 in string");
  return s;
}

Bytes Reader::data() {
  uint64_t n = uint();
  if (!ok() || !need(n)) return {};
  Bytes d(in_.begin() + pos_, in_.begin() + pos_ + n);
  pos_ += n;
  return d;
}

void Reader::fixed(std::span<uint8_t> out) {
  if (!need(out.size())) {
    std::fill(out.begin(), out.end(), 0);
    return;
  }
  std::copy_n(in_.begin() + pos_, out.size(), out.begin());
  pos_ += out.size();
}

Status Reader::finish() const {
  if (!ok()) return make_error("actor", "invalid_request", "Invalid BARE: " + error_);
  if (!at_end()) return make_error("actor", "invalid_request", "Invalid BARE: trailing bytes");
  return Ok{};
}

}  // namespace anvil::bare
