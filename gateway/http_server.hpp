// The Beast listener: HTTP/1.1 with keep-alive and chunked request bodies,
// one coroutine per connection, every request handed to one handler.
// Malformed or oversized requests get a JSON error and the connection is
// closed; nothing a peer sends can crash or hang the server, and no peer can
// make it hold more than its limits (ServerOptions; operator-guide.md,
// "Security"):
//  - at most `max_connections` open connections (WebSockets included); one
//    more is answered 503 `guard.too_many_connections` and closed;
//  - `EMFILE`/`ENFILE` at accept backs off (10 ms doubling to 1 s) and
//    retries: the acceptor never spins and never stops;
//  - a request's headers must arrive within `header_timeout` and fit
//    `max_header_bytes` (431 beyond), its body within `body_timeout` and
//    `max_body_bytes` (413 beyond);
//  - a keep-alive connection idle for `idle_timeout` is closed, and so is one
//    whose client does not take a response within `write_timeout`;
//  - one request in flight per connection: a pipelined request is read only
//    after the previous response is written, so a pipelining client waits
//    on TCP flow control instead of growing the node's buffers.
// With enable_tls() the port speaks TLS only: the handshake must finish
// within `tls_handshake_timeout`, then ALPN picks HTTP/2 (h2_session.hpp,
// the same limits per stream, at most `h2_max_concurrent_streams` streams
// in flight) or HTTP/1.1 (the same session code as plain HTTP, over the TLS
// stream; WebSocket upgrades included).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "engine-api/http.hpp"
#include "base/value/asio.hpp"
#include "gateway/tls.hpp"

namespace anvil::gateway {

using Handler = std::function<asio::awaitable<http::Response>(http::Request)>;
using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
// Takes over a connection whose request asked for a WebSocket upgrade.
using UpgradeHandler = std::function<asio::awaitable<void>(BeastRequest, boost::beast::tcp_stream)>;
// The same over TLS (HTTP/1.1 only: the node does not offer RFC 8441's
// WebSockets over HTTP/2, so browsers open them over HTTP/1.1).
using TlsUpgradeHandler = std::function<asio::awaitable<void>(BeastRequest, TlsStream)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6420;
  // Any request body (raw `/request` bodies have only this limit; actions and
  // queue messages have the smaller message limits, actor_routes.hpp).
  size_t max_body_bytes = 32 * 1024 * 1024;
  size_t max_header_bytes = 64 * 1024;
  size_t max_connections = 4096;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{60'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds write_timeout{30'000};
  // TLS only: the handshake, from accept.
  std::chrono::milliseconds tls_handshake_timeout{10'000};
  // HTTP/2 only: SETTINGS_MAX_CONCURRENT_STREAMS, the requests one
  // connection may have in flight (HTTP/1.1 has one).
  size_t h2_max_concurrent_streams = 100;
};

// The transport-neutral view of a Beast request (header names lowercased).
http::Request to_request(const BeastRequest& r);
// Whether a peer address is this host's (127.0.0.0/8, ::1, v4-mapped).
bool is_loopback(const asio::ip::address& a);

class HttpServer {
 public:
  HttpServer(asio::io_context& io, ServerOptions opts, Handler handler, UpgradeHandler upgrade);
  // Binds and starts accepting; returns the bound port (useful with port 0).
  Result<uint16_t> start();
  void stop();
  // Serve TLS instead of plain HTTP (before start()); `ctx` from make_tls_context().
  void enable_tls(std::shared_ptr<asio::ssl::context> ctx, TlsUpgradeHandler upgrade);
  bool tls() const { return tls_ctx_ != nullptr; }

  size_t open_connections() const { return open_->load(); }
  uint64_t refused_connections() const { return refused_.load(); }
  uint64_t accept_failures() const { return accept_failures_.load(); }
  uint64_t tls_handshake_failures() const { return handshake_failures_.load(); }

 private:
  struct Slot;  // one counted connection
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(asio::ip::tcp::socket socket);
  asio::awaitable<void> tls_session(asio::ip::tcp::socket socket);
  // HTTP/1.1 on a plain or TLS stream, until the connection ends.
  template <typename Stream, typename Upgrade>
  asio::awaitable<void> serve_http1(Stream& stream, bool from_loopback, const Upgrade& upgrade);
  void refuse(asio::ip::tcp::socket& socket);

  asio::io_context& io_;
  ServerOptions opts_;
  Handler handler_;
  UpgradeHandler upgrade_;
  std::shared_ptr<asio::ssl::context> tls_ctx_;
  TlsUpgradeHandler tls_upgrade_;
  asio::ip::tcp::acceptor acceptor_;
  // Shared with each session's Slot: a session whose coroutine frame is
  // destroyed after the server (the io_context drops suspended sessions when
  // it is destroyed, after the objects declared after it) still has a live
  // counter to decrement.
  std::shared_ptr<std::atomic<size_t>> open_ = std::make_shared<std::atomic<size_t>>(0);
  std::atomic<uint64_t> refused_{0}, accept_failures_{0}, handshake_failures_{0};
};

}  // namespace anvil::gateway
