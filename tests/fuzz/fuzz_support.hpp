// Shared checks for the libFuzzer targets (tests/fuzz/fuzz_*.cpp). A check
// that fails prints why and aborts, which libFuzzer reports as a crash and
// saves the input as crash-<sha1> in the working directory.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>
#include <string_view>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::fuzz {

[[noreturn]] inline void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz check failed: %s %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

#define FUZZ_CHECK(cond, ...) \
  do {                        \
    if (!(cond)) ::anvil::fuzz::fail("FUZZ_CHECK(" #cond ")" __VA_OPT__(, ) __VA_ARGS__); \
  } while (0)

// Runs one input; an exception escaping a decoder is a finding (decoders
// report bad input as an Error value, never by throwing).
template <typename F>
int run(F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    fail("exception escaped:", e.what());
  } catch (...) {
    fail("non-standard exception escaped");
  }
  return 0;
}

// A decoder's rejection: the wire's actor.invalid_request with a message.
inline void check_invalid_request(const Error& e) {
  FUZZ_CHECK(e.group == "actor" && e.code == "invalid_request", e.qualified());
  FUZZ_CHECK(!e.message.empty());
}

inline std::string_view text(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Structural identity: same alternative everywhere, doubles bit for bit
// (NaN == NaN, -0 != 0), objects in the same order. Stricter than ==.
inline bool identical(const Value& a, const Value& b) {
  if (a.storage().index() != b.storage().index()) return false;
  if (a.is_double())
    return std::bit_cast<uint64_t>(a.as_double()) == std::bit_cast<uint64_t>(b.as_double()) ||
           (std::isnan(a.as_double()) && std::isnan(b.as_double()));
  if (a.is_array()) {
    const Array &x = a.as_array(), &y = b.as_array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!identical(x[i], y[i])) return false;
    return true;
  }
  if (a.is_object()) {
    const Object &x = a.as_object(), &y = b.as_object();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (x[i].first != y[i].first || !identical(x[i].second, y[i].second)) return false;
    return true;
  }
  return a == b;
}

// Whether `v` survives JSON unchanged (in value, by ==): no undefined (JSON
// drops it or writes null) and no NaN/Infinity (written as null).
inline bool json_exact(const Value& v) {
  if (v.is_undefined()) return false;
  if (v.is_double()) return std::isfinite(v.as_double());
  if (v.is_array()) {
    for (const auto& x : v.as_array())
      if (!json_exact(x)) return false;
  }
  if (v.is_object()) {
    for (const auto& [k, x] : v.as_object())
      if (!json_exact(x)) return false;
  }
  return true;
}

}  // namespace anvil::fuzz
