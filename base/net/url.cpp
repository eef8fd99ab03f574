#include "base/net/url.hpp"

#include <algorithm>
#include <cctype>

namespace anvil::net {

namespace {

Error invalid(std::string_view url, std::string_view why) {
  return make_error("outbound", "invalid_url", "Invalid URL `" + std::string(url) + "`: " + std::string(why));
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

}  // namespace

std::string Url::pool_key() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

Result<Url> parse_url(std::string_view url) {
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return invalid(url, "contains a space or control character");

  Url out;
  std::string_view rest;
  if (iequals_prefix(url, "https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else if (iequals_prefix(url, "http://")) {
    rest = url.substr(7);
  } else {
    return invalid(url, "scheme must be http or https");
  }

  const size_t auth_end = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view tail = rest.substr(auth_end);
  if (authority.find('@') != std::string_view::npos) return invalid(url, "userinfo is not supported");

  std::string_view host, port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid(url, "unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid(url, "garbage after IPv6 literal");
      port = after.substr(1);
      if (port.empty()) return invalid(url, "empty port");
    }
  } else {
    const size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return invalid(url, "empty port");
    }
  }
  if (host.empty()) return invalid(url, "empty host");

  if (port.empty()) {
    out.port = out.tls ? 443 : 80;
  } else {
    uint32_t p = 0;
    if (port.size() > 5) return invalid(url, "port out of range");
    for (char c : port) {
      if (c < '0' || c > '9') return invalid(url, "port is not a number");
      p = p * 10 + uint32_t(c - '0');
    }
    if (p == 0 || p > 65535) return invalid(url, "port out of range");
    out.port = static_cast<uint16_t>(p);
  }

  out.host.assign(host);
  std::transform(out.host.begin(), out.host.end(), out.host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool v6 = out.host.find(':') != std::string::npos;
  out.authority = v6 ? "[" + out.host + "]" : out.host;
  if (out.port != (out.tls ? 443 : 80)) out.authority += ":" + std::to_string(out.port);

  tail = tail.substr(0, tail.find('#'));
  if (tail.empty() || tail.front() == '?') out.target = "/";
  out.target.append(tail);
  return out;
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string percent_decode(std::string_view s, bool form) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (form && s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace anvil::net
