#include "base/value/cbor.hpp"

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "base/value/detail.hpp"
#include "base/value/json.hpp"

namespace anvil::cbor {
namespace {

using detail::kMaxDepth;

Error bad(std::string why) { return make_error("actor", "invalid_request", "Invalid CBOR: " + why); }

// ---------------------------------------------------------------- decoding
// A CBOR epoch date (seconds) as Date.prototype.toISOString writes it, i.e.
// what the same Date would have become through JSON.stringify.
Result<Value> date_string(double seconds) {
  double ms = std::round(seconds * 1000);  // cbor-x: new Date(Math.round(s * 1000))
  if (!(std::fabs(ms) <= 8.64e15)) return bad("date out of range");
  int64_t t = static_cast<int64_t>(ms);
  int64_t days = t >= 0 ? t / 86400000 : -((-t + 86400000 - 1) / 86400000);
  int64_t rem = t - days * 86400000;  // [0, 86400000)
  // Civil date from days since 1970-01-01 (proleptic Gregorian).
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  char buf[40];
  const char* year_fmt = year >= 0 && year <= 9999 ? "%04lld" : year < 0 ? "-%06lld" : "+%06lld";
  int n = std::snprintf(buf, sizeof buf, year_fmt, static_cast<long long>(year < 0 ? -year : year));
  std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), "-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ",
                static_cast<long long>(month), static_cast<long long>(day), static_cast<long long>(rem / 3600000),
                static_cast<long long>(rem / 60000 % 60), static_cast<long long>(rem / 1000 % 60),
                static_cast<long long>(rem % 1000));
  return Value(std::string(buf));
}

class Decoder {
 public:
  Decoder(std::span<const uint8_t> in, Mode mode) : in_(in), mode_(mode) {}

  Result<Value> top() {
    auto v = item(0);
    if (!v.ok()) return v;
    if (pos_ != in_.size()) return bad("trailing bytes");
    return v;
  }

 private:
  bool read_n(size_t n, uint64_t& out) {
    if (in_.size() - pos_ < n) return false;
    out = 0;
    for (size_t i = 0; i < n; ++i) out = (out << 8) | in_[pos_++];
    return true;
  }

  // Reads the argument of a head; `indefinite` for ai == 31.
  Result<uint64_t> argument(uint8_t ai, bool& indefinite) {
    indefinite = false;
    uint64_t v = 0;
    if (ai < 24) return uint64_t{ai};
    if (ai == 31) {
      indefinite = true;
      return uint64_t{0};
    }
    if (ai > 27) return bad("reserved additional info");
    size_t n = size_t{1} << (ai - 24);
    if (!read_n(n, v)) return bad("truncated");
    return v;
  }

  Result<std::string> chunks(uint8_t major, uint64_t len, bool indefinite) {
    std::string out;
    if (!indefinite) {
      if (len > in_.size() - pos_) return bad("truncated string");
      out.assign(reinterpret_cast<const char*>(in_.data() + pos_), len);
      pos_ += len;
      return out;
    }
    for (;;) {
      if (pos_ >= in_.size()) return bad("truncated");
      uint8_t ib = in_[pos_++];
      if (ib == 0xff) return out;
      if ((ib >> 5) != major) return bad("bad chunk");
      bool ind2;
      auto n = argument(ib & 31, ind2);
      if (!n.ok()) return n.error();
      if (ind2 || *n > in_.size() - pos_) return bad("bad chunk");
      out.append(reinterpret_cast<const char*>(in_.data() + pos_), *n);
      pos_ += *n;
    }
  }

  Result<Value> item(int depth) {
    if (depth > kMaxDepth) return bad("nesting too deep");
    if (pos_ >= in_.size()) return bad("truncated");
    uint8_t ib = in_[pos_++];
    uint8_t major = ib >> 5, ai = ib & 31;
    bool indefinite;
    auto arg = argument(ai, indefinite);
    if (!arg.ok()) return arg.error();
    uint64_t n = *arg;
    const bool wide_is_bigint = mode_ != Mode::Storage && ai == 27;
    switch (major) {
      case 0:
        if (indefinite) return bad("indefinite integer");
        if (wide_is_bigint || n > uint64_t(std::numeric_limits<int64_t>::max())) return Value(BigInt{false, n});
        return Value(static_cast<int64_t>(n));
      case 1:
        if (indefinite) return bad("indefinite integer");
        if (wide_is_bigint || n > uint64_t(std::numeric_limits<int64_t>::max())) {
          if (n == std::numeric_limits<uint64_t>::max()) return bad("integer out of range");
          return Value(BigInt{true, n + 1});
        }
        return Value(-1 - static_cast<int64_t>(n));
      case 2: {
        auto s = chunks(2, n, indefinite);
        if (!s.ok()) return s.error();
        return Value(Bytes(s->begin(), s->end()));
      }
      case 3: {
        auto s = chunks(3, n, indefinite);
        if (!s.ok()) return s.error();
        return Value(std::move(*s));
      }
      case 4: {
        Array a;
        if (!indefinite) {
          if (n > in_.size() - pos_) return bad("truncated array");
          a.reserve(n);
        }
        for (uint64_t i = 0; indefinite || i < n; ++i) {
          if (indefinite) {
            if (pos_ >= in_.size()) return bad("truncated");
            if (in_[pos_] == 0xff) {
              ++pos_;
              break;
            }
          }
          auto v = item(depth + 1);
          if (!v.ok()) return v;
          a.push_back(std::move(*v));
        }
        return Value(std::move(a));
      }
      case 5: {
        detail::ObjectBuilder o;
        if (!indefinite && n > in_.size() - pos_) return bad("truncated map");
        for (uint64_t i = 0; indefinite || i < n; ++i) {
          if (indefinite) {
            if (pos_ >= in_.size()) return bad("truncated");
            if (in_[pos_] == 0xff) {
              ++pos_;
              break;
            }
          }
          auto k = item(depth + 1);
          if (!k.ok()) return k;
          std::string key;
          if (k->is_string())
            key = k->as_string();
          else if (k->is_int())
            key = std::to_string(k->as_int());  // JS object keys are strings
          else
            return bad("map key is not a string");
          auto v = item(depth + 1);
          if (!v.ok()) return v;
          o.add(std::move(key), std::move(*v));
        }
        return Value(o.take());
      }
      case 6: {
        if (indefinite) return bad("indefinite tag");
        auto inner = item(depth + 1);
        if (!inner.ok()) return inner;
        if (n == 64) {  // Uint8Array
          if (!inner->is_bytes()) return bad("tag 64 without bytes");
          return inner;
        }
        if (n == 2 || n == 3) {  // bignum
          if (!inner->is_bytes() || inner->as_bytes().size() > 8) return bad("bignum too large");
          uint64_t mag = 0;
          for (uint8_t b : inner->as_bytes()) mag = (mag << 8) | b;
          if (n == 2) return Value(BigInt{false, mag});
          if (mag == std::numeric_limits<uint64_t>::max()) return bad("bignum too large");
          return Value(BigInt{true, mag + 1});
        }
        if (n == 0) {  // date/time string
          if (!inner->is_string()) return bad("tag 0 without a string");
          return inner;
        }
        if (n == 1) {  // epoch-based date (cbor-x encodes Date so)
          if (!inner->is_number()) return bad("tag 1 without a number");
          return date_string(inner->as_number());
        }
        if (n == 258) {  // Set => array
          if (!inner->is_array()) return bad("tag 258 without array");
          return inner;
        }
        return bad("unsupported tag " + std::to_string(n));
      }
      case 7:
        switch (ai) {
          case 20: return Value(false);
          case 21: return Value(true);
          case 22: return Value(nullptr);
          case 23: return Value(Undefined{});
          case 25: {  // half float
            uint16_t h = static_cast<uint16_t>(n);
            int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
            double v = exp == 0 ? std::ldexp(mant, -24) : exp != 31 ? std::ldexp(mant + 1024, exp - 25)
                                                                    : (mant == 0 ? INFINITY : NAN);
            return Value((h & 0x8000) ? -v : v);
          }
          case 26: {
            float f = std::bit_cast<float>(static_cast<uint32_t>(n));
            return Value(static_cast<double>(f));
          }
          case 27: return Value(std::bit_cast<double>(n));
          default: return bad("unsupported simple value");
        }
    }
    return bad("unreachable");
  }

  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  Mode mode_;
};

// ---------------------------------------------------------------- encoding
class Encoder {
 public:
  explicit Encoder(Mode mode) : mode_(mode) {}
  Bytes take() { return std::move(out_); }

  void head(uint8_t major, uint64_t n) {
    uint8_t m = static_cast<uint8_t>(major << 5);
    if (n < 24) {
      out_.push_back(m | static_cast<uint8_t>(n));
    } else if (n <= 0xff) {
      out_.push_back(m | 24);
      out_.push_back(static_cast<uint8_t>(n));
    } else if (n <= 0xffff) {
      out_.push_back(m | 25);
      be(n, 2);
    } else if (n <= 0xffffffffULL) {
      out_.push_back(m | 26);
      be(n, 4);
    } else {
      out_.push_back(m | 27);
      be(n, 8);
    }
  }

  void value(const Value& v) {
    std::visit([this](const auto& x) { this->put(x); }, v.storage());
  }

 private:
  void be(uint64_t n, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<uint8_t>(n >> (i * 8)));
  }

  void text(std::string_view s) {
    head(3, s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }

  void int_minimal(int64_t v) {
    if (v >= 0)
      head(0, static_cast<uint64_t>(v));
    else
      head(1, static_cast<uint64_t>(-(v + 1)));
  }

  void float64(double d) {
    out_.push_back(0xfb);
    be(std::bit_cast<uint64_t>(d), 8);
  }

  // A JS number: small integers as CBOR ints (as cbor-x), others float64.
  void js_number(double d) {
    if (std::isfinite(d) && d == std::floor(d) && d >= -4294967296.0 && d <= 4294967295.0 &&
        !(d == 0 && std::signbit(d)))
      int_minimal(static_cast<int64_t>(d));
    else
      float64(d);
  }

  void tagged_pair(const char* tag, Value second) {
    head(4, 2);
    text(tag);
    value(second);
  }

  void put(std::nullptr_t) { out_.push_back(0xf6); }
  void put(Undefined) {
    if (mode_ == Mode::Compat)
      tagged_pair("$Undefined", Value(0));
    else
      out_.push_back(0xf7);
  }
  void put(bool b) { out_.push_back(b ? 0xf5 : 0xf4); }
  void put(int64_t v) {
    if (mode_ == Mode::Storage || (v >= -4294967296LL && v <= 4294967295LL))
      int_minimal(v);
    else
      float64(static_cast<double>(v));
  }
  void put(double d) {
    if (mode_ == Mode::Storage)
      float64(d);
    else
      js_number(d);
  }
  void put(const BigInt& raw) {
    BigInt b = raw;
    if (b.magnitude == 0) b.negative = false;  // there is no -0n
    switch (mode_) {
      case Mode::Storage: {
        out_.push_back(0xc0 | (b.negative ? 3 : 2));
        uint64_t m = b.negative ? b.magnitude - 1 : b.magnitude;
        head(2, 8);
        be(m, 8);
        break;
      }
      case Mode::Envelope:
        if (b.negative) {
          out_.push_back(0x3b);
          be(b.magnitude - 1, 8);
        } else {
          out_.push_back(0x1b);
          be(b.magnitude, 8);
        }
        break;
      case Mode::Compat:
        tagged_pair("$BigInt", Value(b.to_string()));
        break;
    }
  }
  void put(const std::string& s) { text(s); }
  void put(const Bytes& b) {
    if (mode_ == Mode::Compat) {
      tagged_pair("$Uint8Array", Value(json::base64_encode(b)));
      return;
    }
    if (mode_ == Mode::Envelope) {
      out_.push_back(0xd8);
      out_.push_back(64);
    }
    head(2, b.size());
    out_.insert(out_.end(), b.begin(), b.end());
  }
  void put(const Array& a) {
    head(4, a.size());
    if (mode_ != Mode::Storage && a.size() == 2 && a[0].is_string() && !a[0].as_string().empty() &&
        a[0].as_string()[0] == '$') {
      text("$" + a[0].as_string());  // escaped; the client strips one '$'
      value(a[1]);
      return;
    }
    for (const auto& item : a) value(item);
  }
  void put(const Object& o) {
    head(5, o.size());
    for (const auto& [k, v] : o) {
      text(k);
      value(v);
    }
  }

  Mode mode_;
  Bytes out_;
};

}  // namespace

Result<Value> decode(std::span<const uint8_t> bytes, Mode mode) {
  Decoder d(bytes, mode);
  auto v = d.top();
  if (!v.ok() || mode != Mode::Compat) return v;
  return json::revive(std::move(*v));
}

Bytes encode(const Value& v, Mode mode) {
  Encoder e(mode);
  e.value(v);
  return e.take();
}

}  // namespace anvil::cbor
