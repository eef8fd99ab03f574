#include "runtime/value/json.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

namespace anvil::json {
namespace {

constexpr int kMaxDepth = 128;
using ojson = nlohmann::ordered_json;

Error bad(std::string why) { return make_error("actor", "invalid_request", "Invalid JSON: " + why); }

// Nesting depth of JSON text (brackets outside strings), to refuse hostile
// input before the recursive parser sees it.
int max_depth(std::string_view s) {
  int depth = 0, max = 0;
  bool in_str = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_str) {
      if (c == '\\') ++i;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '[' || c == '{') max = std::max(max, ++depth);
    else if (c == ']' || c == '}') --depth;
  }
  return max;
}

Result<Value> revive_tag(const std::string& tag, const ojson& second);

Result<Value> convert(const ojson& j, bool revive) {
  switch (j.type()) {
    case ojson::value_t::null: return Value(nullptr);
    case ojson::value_t::boolean: return Value(j.get<bool>());
    case ojson::value_t::number_integer: return Value(j.get<int64_t>());
    case ojson::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u <= uint64_t(INT64_MAX)) return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case ojson::value_t::number_float: return Value(j.get<double>());
    case ojson::value_t::string: return Value(j.get<std::string>());
    case ojson::value_t::array: {
      if (revive && j.size() == 2 && j[0].is_string()) {
        const auto& tag = j[0].get_ref<const std::string&>();
        if (!tag.empty() && tag[0] == '$') {
          if (tag.size() > 1 && tag[1] == '$') {
            auto second = convert(j[1], revive);
            if (!second.ok()) return second;
            return Value(Array{Value(tag.substr(1)), std::move(*second)});
          }
          return revive_tag(tag, j[1]);
        }
      }
      Array a;
      a.reserve(j.size());
      for (const auto& item : j) {
        auto v = convert(item, revive);
        if (!v.ok()) return v;
        a.push_back(std::move(*v));
      }
      return Value(std::move(a));
    }
    case ojson::value_t::object: {
      Object o;
      o.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        auto v = convert(it.value(), revive);
        if (!v.ok()) return v;
        o.emplace_back(it.key(), std::move(*v));
      }
      return Value(std::move(o));
    }
    default: return bad("unsupported value");
  }
}

Result<Value> revive_tag(const std::string& tag, const ojson& second) {
  if (tag == "$BigInt") {
    BigInt b;
    if (!second.is_string() || !BigInt::parse(second.get_ref<const std::string&>(), b)) return bad("bad $BigInt");
    return Value(b);
  }
  if (tag == "$Uint8Array" || tag == "$ArrayBuffer") {
    if (!second.is_string()) return bad("bad " + tag);
    auto bytes = base64_decode(second.get_ref<const std::string&>());
    if (!bytes.ok()) return bad("bad " + tag);
    return Value(std::move(*bytes));
  }
  if (tag == "$Undefined") return Value(Undefined{});
  if (tag == "$Set") {
    if (!second.is_array()) return bad("bad $Set");
    return convert(second, true);
  }
  return make_error("actor", "invalid_request", "Unknown JSON encoding type `" + tag + "`.");
}

// ---------------------------------------------------------------- writing
void write_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // Validate one UTF-8 sequence; invalid bytes become U+FFFD.
    size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && len == 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
    }
    if (ok && len == 4) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  out += '"';
}

// Number::toString as JavaScript formats it.
void write_number(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  if (d == 0) {
    out += '0';
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, r.ptr - buf);  // e.g. "-1.2345e+02"
  bool neg = sci[0] == '-';
  if (neg) sci.remove_prefix(1);
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  int exp = std::atoi(std::string(sci.substr(e + 1)).c_str());
  int k = static_cast<int>(digits.size());
  int n = exp + 1;
  if (neg) out += '-';
  if (k <= n && n <= 21) {
    out += digits;
    out.append(n - k, '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, n);
    out += '.';
    out += digits.substr(n);
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(-n, '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += 'e';
    out += n - 1 >= 0 ? '+' : '-';
    out += std::to_string(std::abs(n - 1));
  }
}

void write(std::string& out, const Value& v);

void write_tagged(std::string& out, const char* tag, const std::string& payload) {
  out += "[\"";
  out += tag;
  out += "\",";
  write_string(out, payload);
  out += ']';
}

void write(std::string& out, const Value& v) {
  const auto& s = v.storage();
  if (v.is_null() || v.is_undefined()) {
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
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
    if (a.size() == 2 && a[0].is_string() && !a[0].as_string().empty() && a[0].as_string()[0] == '$') {
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
    (void)s;
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

Result<Value> parse(std::string_view text, bool revive) {
  if (max_depth(text) > kMaxDepth) return bad("nesting too deep");
  ojson j = ojson::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("malformed");
  try {
    return convert(j, revive);
  } catch (const std::exception& e) {
    return bad(e.what());
  }
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
    uint32_t n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest) {
    uint32_t n = bytes[i] << 16;
    if (rest == 2) n |= bytes[i + 1] << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    if (rest == 2) out += alphabet[(n >> 6) & 63];
    if (!url_safe) out.append(3 - rest, '=');
  }
  return out;
}

Result<Bytes> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return bad("bad base64 length");
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
