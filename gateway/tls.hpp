// TLS for the listener: the server's OpenSSL context (a certificate and key
// from PEM files, or a self-signed one made at start for development) and
// ALPN, which picks HTTP/2 (`h2`) or HTTP/1.1 per connection on one port.
#pragma once

#include <memory>
#include <string>

#include "base/value/asio.hpp"  // first: it fixes Boost 1.74's includes under GCC 12

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "base/value/error.hpp"

namespace anvil::gateway {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

struct TlsOptions {
  std::string cert_file;  // PEM: the certificate, then any intermediates
  std::string key_file;   // PEM private key
  // Ignore the files: make a fresh self-signed certificate for localhost,
  // 127.0.0.1 and ::1 (development only: no client trusts it).
  bool self_signed = false;
  // Offer `h2` in ALPN (HTTP/1.1 is always offered).
  bool http2 = true;
};

// A server context with ALPN selection; errors name the file that failed.
Result<std::shared_ptr<asio::ssl::context>> make_tls_context(const TlsOptions& opts);

// The protocol ALPN chose on a handshaken stream ("" when the client offered none).
std::string negotiated_alpn(TlsStream& stream);

}  // namespace anvil::gateway
