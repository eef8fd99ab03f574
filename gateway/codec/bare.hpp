// BARE primitives (client-protocol.md §8.3): uint = LEB128, u16/u32/u64/i64
// LE, bool = 1 byte, string/data = uint length + bytes, fixed data = the bytes
// alone, optional = 0/1 + value.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::bare {

class Writer {
 public:
  void u8(uint8_t v);
  void u16(uint16_t v);
  void u32(uint32_t v);
  void u64(uint64_t v);
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }  // two's complement
  void uint(uint64_t v);
  void boolean(bool v);
  void string(std::string_view s);
  void data(std::span<const uint8_t> d);
  void fixed(std::span<const uint8_t> d);  // data[N]: no length prefix
  void optional_present(bool present) { u8(present ? 1 : 0); }
  Bytes take() { return std::move(out_); }
  const Bytes& bytes() const { return out_; }

 private:
  Bytes out_;
};

// Reads primitives; the first failure sticks (ok() false, error() says why).
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  uint8_t u8();
  uint16_t u16();
  uint32_t u32();
  uint64_t u64();
  int64_t i64() { return static_cast<int64_t>(u64()); }
  uint64_t uint();
  // A list or map length. Every element takes at least one byte, so a count
  // above the bytes left is an error here, before anything is allocated.
  uint64_t count();
  bool boolean();  // only 0 or 1 are valid
  std::string string();  // must be valid UTF-8
  Bytes data();
  void fixed(std::span<uint8_t> out);  // data[out.size()]; zeros on failure
  bool optional_present();  // only 0 or 1 are valid
  bool ok() const { return error_.empty(); }
  bool at_end() const { return pos_ == in_.size(); }
  // ok() and every byte consumed (trailing bytes are an error).
  Status finish() const;
  const std::string& error() const { return error_; }
  void fail(std::string why);

 private:
  bool need(size_t n);
  uint64_t little_endian(size_t width);
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace anvil::bare
