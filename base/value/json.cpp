#include "base/value/json.hpp"
#include "base/value/json_string.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/value/detail.hpp"

namespace anvil::json {
namespace {

using detail::kMaxDepth;

Error bad(std::string why) { return make_error("actor", "invalid_request", "Invalid JSON: " + why); }

bool is_tagged_pair(const Array& a) {
  return a.size() == 2 && a[0].is_string() && !a[0].as_string().empty() && a[0].as_string()[0] == '$';
}

// ---------------------------------------------------------------- parsing
// A strict RFC 8259 parser (what JSON.parse accepts) producing Values
// directly. Errors are reported through `err_`; nothing throws.
class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<Value> run() {
    Value v;
    skip_ws();
    if (!value(v, 0)) return bad(err_);
    skip_ws();
    if (pos_ != s_.size()) return bad("unexpected character at offset " + std::to_string(pos_));
    return v;
  }

 private:
  bool fail(std::string why) {
    if (err_.empty()) err_ = std::move(why);
    return false;
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }

  void skip_ws() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return fail("invalid literal at offset " + std::to_string(pos_));
    pos_ += word.size();
    return true;
  }

  bool value(Value& out, int depth) {
    if (at_end()) return fail("unexpected end of input");
    switch (peek()) {
      case '{': return object(out, depth + 1);
      case '[': return array(out, depth + 1);
      case '"': {
        std::string s;
        if (!string(s)) return false;
        out = Value(std::move(s));
        return true;
      }
      case 't':
        out = Value(true);
        return literal("true");
      case 'f':
        out = Value(false);
        return literal("false");
      case 'n':
        out = Value(nullptr);
        return literal("null");
      default: return number(out);
    }
  }

  bool array(Value& out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    ++pos_;  // '['
    Array a;
    skip_ws();
    if (!at_end() && peek() == ']') {
      ++pos_;
      out = Value(std::move(a));
      return true;
    }
    for (;;) {
      skip_ws();
      Value item;
      if (!value(item, depth)) return false;
      a.push_back(std::move(item));
      skip_ws();
      if (at_end()) return fail("unterminated array");
      char c = s_[pos_++];
      if (c == ']') break;
      if (c != ',') return fail("expected ',' or ']' at offset " + std::to_string(pos_ - 1));
    }
    out = Value(std::move(a));
    return true;
  }

  bool object(Value& out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    ++pos_;  // '{'
    detail::ObjectBuilder o;
    skip_ws();
    if (!at_end() && peek() == '}') {
      ++pos_;
      out = Value(o.take());
      return true;
    }
    for (;;) {
      skip_ws();
      if (at_end() || peek() != '"') return fail("expected a string key at offset " + std::to_string(pos_));
      std::string key;
      if (!string(key)) return false;
      skip_ws();
      if (at_end() || s_[pos_] != ':') return fail("expected ':' at offset " + std::to_string(pos_));
      ++pos_;
      skip_ws();
      Value item;
      if (!value(item, depth)) return false;
      o.add(std::move(key), std::move(item));
      skip_ws();
      if (at_end()) return fail("unterminated object");
      char c = s_[pos_++];
      if (c == '}') break;
      if (c != ',') return fail("expected ',' or '}' at offset " + std::to_string(pos_ - 1));
    }
    out = Value(o.take());
    return true;
  }

  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Reads the 4 hex digits after "\u".
  bool hex4(uint32_t& out) {
    if (s_.size() - pos_ < 4) return fail("truncated \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      int d = hex_digit(s_[pos_ + i]);
      if (d < 0) return fail("invalid \\u escape");
      out = (out << 4) | static_cast<uint32_t>(d);
    }
    pos_ += 4;
    return true;
  }

  bool escape(std::string& out) {
    if (at_end()) return fail("unterminated string");
    char c = s_[pos_++];
    switch (c) {
      case '"': out += '"'; return true;
      case '\\': out += '\\'; return true;
      case '/': out += '/'; return true;
      case 'b': out += '\b'; return true;
      case 'f': out += '\f'; return true;
      case 'n': out += '\n'; return true;
      case 'r': out += '\r'; return true;
      case 't': out += '\t'; return true;
      case 'u': {
        uint32_t cp;
        if (!hex4(cp)) return false;
        if (cp >= 0xd800 && cp <= 0xdbff && s_.substr(pos_, 2) == "\\u") {
          size_t save = pos_;
          pos_ += 2;
          uint32_t low;
          if (!hex4(low)) return false;
          if (low >= 0xdc00 && low <= 0xdfff) {
            detail::append_utf8(out, 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00));
            return true;
          }
          pos_ = save;  // the second escape stands on its own
        }
        if (cp >= 0xd800 && cp <= 0xdfff) {
          out += detail::kReplacementChar;  // lone surrogate: not representable in UTF-8
          return true;
        }
        detail::append_utf8(out, cp);
        return true;
      }
      default: return fail("invalid escape");
    }
  }

  bool string(std::string& out) {
    ++pos_;  // opening quote
    size_t run = pos_;
    for (;;) {
      if (at_end()) return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        out.append(s_.substr(run, pos_ - run));
        ++pos_;
        return true;
      }
      if (c == '\\') {
        out.append(s_.substr(run, pos_ - run));
        ++pos_;
        if (!escape(out)) return false;
        run = pos_;
        continue;
      }
      if (c < 0x20) return fail("control character in string");
      if (c < 0x80) {
        ++pos_;
        continue;
      }
      int n = detail::utf8_sequence(s_, pos_);
      if (n > 0) {
        pos_ += static_cast<size_t>(n);
        continue;
      }
      out.append(s_.substr(run, pos_ - run));
      out += detail::kReplacementChar;
      pos_ += static_cast<size_t>(-n);
      run = pos_;
    }
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  // Rough decimal exponent of the number token s_[int_start, pos_) whose
  // integer digits end at int_end (only its sign matters: > 0 means huge).
  long decimal_magnitude(size_t int_start, size_t int_end) const {
    long mag = 0;
    if (!(int_end - int_start == 1 && s_[int_start] == '0')) {
      mag = static_cast<long>(int_end - int_start) - 1;
    } else if (int_end < pos_ && s_[int_end] == '.') {
      size_t k = int_end + 1;
      while (k < pos_ && s_[k] == '0') ++k;
      mag = -static_cast<long>(k - int_end);
    }
    size_t e = s_.find_first_of("eE", int_end);
    if (e != std::string_view::npos && e < pos_) {
      bool neg = s_[e + 1] == '-';
      long x = 0;
      for (size_t k = e + 1; k < pos_; ++k)
        if (digit(s_[k]) && x < 100000) x = x * 10 + (s_[k] - '0');
      mag += neg ? -x : x;
    }
    return mag;
  }

  bool number(Value& out) {
    const size_t start = pos_;
    bool negative = false;
    if (!at_end() && peek() == '-') {
      negative = true;
      ++pos_;
    }
    if (at_end() || !digit(peek())) return fail("unexpected character at offset " + std::to_string(start));
    if (peek() == '0') {
      ++pos_;
    } else {
      while (!at_end() && digit(peek())) ++pos_;
    }
    const size_t int_end = pos_;
    bool integral_syntax = true;
    if (!at_end() && peek() == '.') {
      integral_syntax = false;
      ++pos_;
      if (at_end() || !digit(peek())) return fail("invalid number");
      while (!at_end() && digit(peek())) ++pos_;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      integral_syntax = false;
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (at_end() || !digit(peek())) return fail("invalid number");
      while (!at_end() && digit(peek())) ++pos_;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (integral_syntax) {
      int64_t i = 0;
      auto r = std::from_chars(first, last, i);
      if (r.ec == std::errc() && r.ptr == last) {
        if (i == 0 && negative) {
          out = Value(-0.0);  // JSON.parse("-0") is -0
        } else {
          out = Value(i);
        }
        return true;
      }
    }
    double d = 0;
    auto r = std::from_chars(first, last, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Beyond double range: JavaScript rounds to Infinity or to 0.
      d = decimal_magnitude(start + (negative ? 1 : 0), int_end) > 0 ? std::numeric_limits<double>::infinity() : 0.0;
      if (negative) d = -d;
    } else if (r.ec != std::errc() || r.ptr != last) {
      return fail("invalid number");
    }
    // One JS number type: integral values that fit int64 are kept as int64.
    if (std::isfinite(d) && d == std::trunc(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
        !(d == 0 && std::signbit(d))) {
      out = Value(static_cast<int64_t>(d));
    } else {
      out = Value(d);
    }
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string err_;
};

// ---------------------------------------------------------------- revival
// rivetkit reviveJsonCompatValue, top-down: a tagged pair is interpreted
// before its contents, and the items of a $Set are revived one by one (the
// item list itself is never read as a tag).
Status revive_in_place(Value& v, int depth) {
  if (depth > kMaxDepth) return bad("nesting too deep");
  if (v.is_object()) {
    for (auto& [_, item] : v.as_object())
      if (auto st = revive_in_place(item, depth + 1); !st.ok()) return st;
    return Ok{};
  }
  if (!v.is_array()) return Ok{};
  Array& a = v.as_array();
  if (!is_tagged_pair(a)) {
    for (auto& item : a)
      if (auto st = revive_in_place(item, depth + 1); !st.ok()) return st;
    return Ok{};
  }
  const std::string& tag = a[0].as_string();
  Value& payload = a[1];
  if (tag == "$BigInt") {
    BigInt b;
    if (payload.is_string() && BigInt::parse(payload.as_string(), b)) {
      v = Value(b);
    } else if (payload.is_int()) {
      v = Value(BigInt::from_int64(payload.as_int()));
    } else if (payload.is_bigint()) {
      v = Value(payload.as_bigint());
    } else {
      return bad("invalid $BigInt value");
    }
    return Ok{};
  }
  if (tag == "$Uint8Array" || tag == "$ArrayBuffer") {
    if (!payload.is_string()) return bad("invalid " + tag + " value");
    auto bytes = base64_decode(payload.as_string());
    if (!bytes.ok()) return bad("invalid " + tag + " value");
    v = Value(std::move(*bytes));
    return Ok{};
  }
  if (tag == "$Undefined") {
    v = Value(Undefined{});
    return Ok{};
  }
  if (tag == "$Set") {
    if (!payload.is_array()) return bad("invalid $Set value");
    for (auto& item : payload.as_array())
      if (auto st = revive_in_place(item, depth + 1); !st.ok()) return st;
    Value items = std::move(payload);
    v = std::move(items);
    return Ok{};
  }
  if (tag.size() > 1 && tag[1] == '$') {
    a[0] = Value(tag.substr(1));
    return revive_in_place(a[1], depth + 1);
  }
  return make_error("actor", "invalid_request",
                    "Unknown JSON encoding type: " + tag + ". This may indicate corrupted data or a version mismatch.");
}

// ---------------------------------------------------------------- writing
}  // namespace

void write_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // start of bytes not yet copied
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      int n = detail::utf8_sequence(s, i);
      if (n > 0) {
        i += static_cast<size_t>(n);
        continue;
      }
      out.append(s.substr(run, i - run));
      out += detail::kReplacementChar;
      i += static_cast<size_t>(-n);
      run = i;
      continue;
    }
    out.append(s.substr(run, i - run));
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    ++i;
    run = i;
  }
  out.append(s.substr(run));
  out += '"';
}

namespace {

void write_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Number::toString (ECMA-262 Number::toString(10)) from the shortest
// round-trip digits.
void write_number(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";  // JSON.stringify(NaN) / Infinity
    return;
  }
  if (d == 0) {
    out += '0';  // also -0
    return;
  }
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));  // "-1.2345e+02"
  if (sci[0] == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  char digits[24];
  int k = 0;
  for (char c : sci.substr(0, e))
    if (c != '.') digits[k++] = c;
  int exp = 0;
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exp);
  int n = exp + 1;  // the decimal point sits after n digits
  std::string_view ds(digits, static_cast<size_t>(k));
  if (k <= n && n <= 21) {
    out += ds;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += ds.substr(0, static_cast<size_t>(n));
    out += '.';
    out += ds.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += ds;
  } else {
    out += ds[0];
    if (k > 1) {
      out += '.';
      out += ds.substr(1);
    }
    out += 'e';
    out += n - 1 >= 0 ? '+' : '-';
    write_int(out, n - 1 >= 0 ? n - 1 : 1 - n);
  }
}

void write_tagged(std::string& out, std::string_view tag, std::string_view payload) {
  out += "[\"";
  out += tag;
  out += "\",";
  write_string(out, payload);
  out += ']';
}

void write(std::string& out, const Value& v) {
  if (v.is_null() || v.is_undefined()) {
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    write_int(out, v.as_int());
  } else if (v.is_double()) {
    write_number(out, v.as_double());
  } else if (v.is_bigint()) {
    write_tagged(out, "$BigInt", v.as_bigint().to_string());
  } else if (v.is_string()) {
    write_string(out, v.as_string());
  } else if (v.is_bytes()) {
    write_tagged(out, "$Uint8Array", base64_encode(v.as_bytes()));
  } else if (v.is_array()) {
    const auto& a = v.as_array();
    out += '[';
    if (is_tagged_pair(a)) {
      // A user pair that looks like a tag gets one more '$'; revival strips it.
      write_string(out, "$" + a[0].as_string());
      out += ',';
      write(out, a[1]);
    } else {
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += ',';
        write(out, a[i]);
      }
    }
    out += ']';
  } else {
    out += '{';
    bool first = true;
    for (const auto& [k, item] : v.as_object()) {
      if (item.is_undefined()) continue;  // JSON.stringify drops undefined properties
      if (!first) out += ',';
      first = false;
      write_string(out, k);
      out += ':';
      write(out, item);
    }
    out += '}';
  }
}

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

}  // namespace

Result<Value> parse(std::string_view text, bool with_revival) {
  auto v = Parser(text).run();
  if (!v.ok() || !with_revival) return v;
  if (auto st = revive_in_place(*v, 0); !st.ok()) return st.error();
  return v;
}

Result<Value> revive(Value v) {
  if (auto st = revive_in_place(v, 0); !st.ok()) return st.error();
  return v;
}

std::string dump(const Value& v) {
  std::string out;
  write(out, v);
  return out;
}

std::string base64_encode(std::span<const uint8_t> bytes, bool url_safe) {
  const char* alphabet = url_safe ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                                  : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest) {
    uint32_t n = uint32_t{bytes[i]} << 16;
    if (rest == 2) n |= uint32_t{bytes[i + 1]} << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    if (rest == 2) out += alphabet[(n >> 6) & 63];
    if (!url_safe) out.append(3 - rest, '=');
  }
  return out;
}

Result<Bytes> base64_decode(std::string_view text) {
  size_t pad = 0;
  while (!text.empty() && text.back() == '=' && pad < 2) {
    text.remove_suffix(1);
    ++pad;
  }
  if (text.size() % 4 == 1) return bad("bad base64 length");
  if (pad && (text.size() + pad) % 4 != 0) return bad("bad base64 padding");
  Bytes out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64_value(c);
    if (v < 0) return bad("bad base64 character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace anvil::json
