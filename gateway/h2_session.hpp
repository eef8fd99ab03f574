// HTTP/2 on a TLS connection whose ALPN chose `h2` (nghttp2's server
// session, driven by the connection's coroutines on its strand). Each
// stream becomes the same http::Request the HTTP/1.1 path builds (pseudo
// headers mapped to method, path, query and `host`), handed to the same
// handler; its response goes back as HEADERS + DATA under the peer's flow
// control. A request body may arrive in any number of DATA frames over time
// (browsers stream `fetch` bodies); it is handed over whole at END_STREAM.
//
// The listener's limits hold per stream or per connection (ServerOptions):
// SETTINGS_MAX_CONCURRENT_STREAMS = h2_max_concurrent_streams (nghttp2
// refuses more), SETTINGS_MAX_HEADER_LIST_SIZE = max_header_bytes (431
// beyond), max_body_bytes per request (413, then RST_STREAM), a stream's
// body within body_timeout of its headers (else RST_STREAM CANCEL), a header
// block finished within header_timeout (else GOAWAY: an open block stalls
// the whole connection), a connection with no stream for idle_timeout ends
// with GOAWAY, and one whose client takes no bytes for write_timeout is
// closed.
#pragma once

#include "gateway/http_server.hpp"

namespace anvil::gateway {

// Serves `stream` (handshaken, ALPN h2) until the connection ends.
asio::awaitable<void> serve_h2(TlsStream& stream, const ServerOptions& opts, Handler handler, bool from_loopback);

}  // namespace anvil::gateway
