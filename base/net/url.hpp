// The part of an outbound URL the HTTP client needs: scheme, host, port and
// request target. Only absolute http:// and https:// URLs are accepted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/value/error.hpp"

namespace anvil::net {

struct Url {
  bool tls = false;       // https
  std::string host;       // IPv6 literals without brackets
  uint16_t port = 0;      // explicit or the scheme's default
  std::string target;     // path + query, never empty ("/" at least); no fragment
  std::string authority;  // the Host header: host[:port], port only when not the default

  // Connections are pooled per (scheme, host, port).
  std::string pool_key() const;
};

// outbound.invalid_url when the scheme is not http/https, the host is empty,
// the port is not 1..65535, userinfo is present, or any character is a
// control character or space (a URL must never smuggle header bytes).
Result<Url> parse_url(std::string_view url);

// Percent-decoding of a path segment, or with `form` of a query component
// ('+' is a space, as URLSearchParams). A malformed escape stays as is.
std::string percent_decode(std::string_view s, bool form = false);

}  // namespace anvil::net
