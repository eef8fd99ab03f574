// The Beast listener: HTTP/1.1 with keep-alive and chunked request bodies,
// one coroutine per connection, every request handed to one handler.
// Malformed or oversized requests get a JSON error and the connection is
// closed; nothing a peer sends can crash or hang the server.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "engine-api/http.hpp"
#include "base/value/asio.hpp"

namespace anvil::gateway {

using Handler = std::function<asio::awaitable<http::Response>(http::Request)>;
using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
// Takes over a connection whose request asked for a WebSocket upgrade.
using UpgradeHandler = std::function<asio::awaitable<void>(BeastRequest, boost::beast::tcp_stream)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6420;
  size_t max_body_bytes = 32 * 1024 * 1024;
  std::chrono::seconds idle_timeout{120};
};

// The transport-neutral view of a Beast request (header names lowercased).
http::Request to_request(const BeastRequest& r);

class HttpServer {
 public:
  HttpServer(asio::io_context& io, ServerOptions opts, Handler handler, UpgradeHandler upgrade);
  // Binds and starts accepting; returns the bound port (useful with port 0).
  Result<uint16_t> start();
  void stop();

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(asio::ip::tcp::socket socket);

  asio::io_context& io_;
  ServerOptions opts_;
  Handler handler_;
  UpgradeHandler upgrade_;
  asio::ip::tcp::acceptor acceptor_;
};

}  // namespace anvil::gateway
