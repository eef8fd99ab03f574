// The value model shared by every layer: what a RivetKit client can send as
// an action argument, state field, event argument or error metadata.
//
// It mirrors the JavaScript values that survive rivetkit's encodings:
// null, undefined, booleans, numbers (integral numbers are kept as int64 so
// C++ actors can do exact arithmetic), bigint, strings, Uint8Array, arrays and
// plain objects (insertion-ordered, as in JS).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace anvil {

struct Undefined {
  friend bool operator==(Undefined, Undefined) { return true; }
};

// A JS bigint limited to what a CBOR major-type-0/1 integer can hold
// (magnitude < 2^64). Larger bigints are rejected by the codecs.
struct BigInt {
  bool negative = false;   // value = negative ? -1 - magnitude_minus : magnitude
  uint64_t magnitude = 0;  // absolute value (for negative: |v|, never 0)
  static BigInt from_int64(int64_t v);
  std::string to_string() const;  // decimal, e.g. "-12"
  // Parses an optional '-' and decimal digits; false on overflow/garbage.
  static bool parse(std::string_view s, BigInt& out);
  friend bool operator==(const BigInt&, const BigInt&) = default;
};

class Value;
using Bytes = std::vector<uint8_t>;
// The bytes of a text (no copy of a terminator).
inline Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;

class Value {
 public:
  using Storage = std::variant<std::nullptr_t, Undefined, bool, int64_t, double,
                               BigInt, std::string, Bytes, Array, Object>;

  Value() : v_(nullptr) {}
  Value(std::nullptr_t) : v_(nullptr) {}
  Value(Undefined u) : v_(u) {}
  Value(bool b) : v_(b) {}
  Value(int v) : v_(int64_t{v}) {}
  Value(int64_t v) : v_(v) {}
  Value(double d) : v_(d) {}
  Value(BigInt b) : v_(b) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Bytes b) : v_(std::move(b)) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Object o) : v_(std::move(o)) {}

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(v_); }
  bool is_undefined() const { return std::holds_alternative<Undefined>(v_); }
  bool is_nullish() const { return is_null() || is_undefined(); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_double() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_double(); }
  bool is_bigint() const { return std::holds_alternative<BigInt>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_bytes() const { return std::holds_alternative<Bytes>(v_); }
  bool is_array() const { return std::holds_alternative<Array>(v_); }
  bool is_object() const { return std::holds_alternative<Object>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_double() const { return std::get<double>(v_); }
  // Any JS number as a double.
  double as_number() const { return is_int() ? double(as_int()) : as_double(); }
  const BigInt& as_bigint() const { return std::get<BigInt>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Bytes& as_bytes() const { return std::get<Bytes>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  Array& as_array() { return std::get<Array>(v_); }
  const Object& as_object() const { return std::get<Object>(v_); }
  Object& as_object() { return std::get<Object>(v_); }

  // Object field lookup; nullptr when absent or not an object.
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  // Object field access that inserts null when missing (object only).
  Value& operator[](std::string_view key);

  const Storage& storage() const { return v_; }
  Storage& storage() { return v_; }

  // Structural equality. Numbers compare by numeric value (int 1 == double 1.0)
  // because JS has one number type; object key order is ignored.
  friend bool operator==(const Value& a, const Value& b);

 private:
  Storage v_;
};

// Convenience builder: obj({{"a", 1}, {"b", "x"}}).
Value obj(std::initializer_list<std::pair<std::string, Value>> fields);
Value arr(std::initializer_list<Value> items);

// Field access for application code that tolerates missing keys and wrong
// types (a non-object `v` has no fields): the fallback answers then.
std::string str_or(const Value& v, std::string_view key, std::string fallback = "");
int64_t int_or(const Value& v, std::string_view key, int64_t fallback);  // doubles truncate
bool bool_or(const Value& v, std::string_view key, bool fallback);
const Value& field_or_null(const Value& v, std::string_view key);

// A human-readable dump for logs and test failure messages (JSON-like).
std::string debug_string(const Value& v);
// GoogleTest printer.
void PrintTo(const Value& v, std::ostream* os);

}  // namespace anvil
