#include "base/value/value.hpp"

#include <algorithm>
#include <charconv>
#include <ostream>

#include "base/value/json.hpp"

namespace anvil {

BigInt BigInt::from_int64(int64_t v) {
  BigInt b;
  if (v < 0) {
    b.negative = true;
    b.magnitude = static_cast<uint64_t>(-(v + 1)) + 1;
  } else {
    b.magnitude = static_cast<uint64_t>(v);
  }
  return b;
}

std::string BigInt::to_string() const {
  std::string s = std::to_string(magnitude);
  return negative && magnitude != 0 ? "-" + s : s;
}

bool BigInt::parse(std::string_view s, BigInt& out) {
  BigInt b;
  if (!s.empty() && s[0] == '-') {
    b.negative = true;
    s.remove_prefix(1);
  }
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), b.magnitude);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  if (b.magnitude == 0) b.negative = false;
  out = b;
  return true;
}

const Value* Value::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [k, v] : as_object())
    if (k == key) return &v;
  return nullptr;
}

Value* Value::find(std::string_view key) {
  if (!is_object()) return nullptr;
  for (auto& [k, v] : as_object())
    if (k == key) return &v;
  return nullptr;
}

Value& Value::operator[](std::string_view key) {
  if (!is_object()) v_ = Object{};
  if (Value* v = find(key)) return *v;
  auto& o = as_object();
  o.emplace_back(std::string(key), Value());
  return o.back().second;
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    return a.as_number() == b.as_number();
  }
  if (a.storage().index() != b.storage().index()) return false;
  if (a.is_object()) {
    const auto& x = a.as_object();
    const auto& y = b.as_object();
    if (x.size() != y.size()) return false;
    for (const auto& [k, v] : x) {
      const Value* other = b.find(k);
      if (!other || !(*other == v)) return false;
    }
    return true;
  }
  return a.storage() == b.storage();
}

Value obj(std::initializer_list<std::pair<std::string, Value>> fields) {
  return Value(Object(fields.begin(), fields.end()));
}

Value arr(std::initializer_list<Value> items) { return Value(Array(items.begin(), items.end())); }

std::string debug_string(const Value& v) { return json::dump(v); }

void PrintTo(const Value& v, std::ostream* os) { *os << debug_string(v); }

std::string str_or(const Value& v, std::string_view key, std::string fallback) {
  const Value* f = v.is_object() ? v.find(key) : nullptr;
  return f && f->is_string() ? f->as_string() : fallback;
}

int64_t int_or(const Value& v, std::string_view key, int64_t fallback) {
  const Value* f = v.is_object() ? v.find(key) : nullptr;
  if (!f) return fallback;
  if (f->is_int()) return f->as_int();
  if (f->is_double()) return static_cast<int64_t>(f->as_double());
  return fallback;
}

bool bool_or(const Value& v, std::string_view key, bool fallback) {
  const Value* f = v.is_object() ? v.find(key) : nullptr;
  return f && f->is_bool() ? f->as_bool() : fallback;
}

const Value& field_or_null(const Value& v, std::string_view key) {
  static const Value null_value;
  const Value* f = v.is_object() ? v.find(key) : nullptr;
  return f ? *f : null_value;
}

}  // namespace anvil
