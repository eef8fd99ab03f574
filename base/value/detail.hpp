// Internals shared by the value codecs (json.cpp, cbor.cpp, gateway/codec).
// Not part of the value API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "base/value/value.hpp"

namespace anvil::detail {

// Nesting limit for every decoder (arrays, maps, tags), so hostile input
// cannot exhaust the stack.
inline constexpr int kMaxDepth = 128;

// Length of the well-formed UTF-8 sequence starting at s[i] (> 0), or, when
// it is ill-formed, minus the length of its maximal subpart (<= -1): the
// bytes that one U+FFFD replaces, as TextDecoder does (WHATWG "maximal
// subpart" rule).
inline int utf8_sequence(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  int need;
  unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    need = 1;
  } else if (c >= 0xe0 && c <= 0xef) {
    need = 2;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;  // no UTF-16 surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 3;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return -k;
    unsigned char b = byte(i + k);
    bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xbf);
    if (!ok) return -k;
  }
  return need + 1;
}

inline bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    int n = utf8_sequence(s, i);
    if (n < 0) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

inline constexpr std::string_view kReplacementChar = "\xef\xbf\xbd";

// Builds an Object with JavaScript's rule for repeated keys (JSON.parse,
// cbor-x): the key keeps its first position and takes the last value.
// Small objects are searched linearly; large ones through a hash index, so a
// body with many keys cannot make decoding quadratic.
class ObjectBuilder {
 public:
  void add(std::string key, Value v) {
    if (index_.empty()) {
      for (auto& [k, existing] : obj_) {
        if (k == key) {
          existing = std::move(v);
          return;
        }
      }
      obj_.emplace_back(std::move(key), std::move(v));
      if (obj_.size() == kLinearLimit) {
        index_.reserve(obj_.size() * 2);
        for (size_t i = 0; i < obj_.size(); ++i) index_.emplace(obj_[i].first, i);
      }
      return;
    }
    auto [it, inserted] = index_.emplace(key, obj_.size());
    if (!inserted) {
      obj_[it->second].second = std::move(v);
      return;
    }
    obj_.emplace_back(std::move(key), std::move(v));
  }
  Object take() { return std::move(obj_); }

 private:
  static constexpr size_t kLinearLimit = 16;
  Object obj_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace anvil::detail
