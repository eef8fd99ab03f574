#include "gateway/http_server.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

namespace anvil::gateway {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

}  // namespace

http::Request to_request(const BeastRequest& r) {
  http::Request out;
  out.method = std::string(r.method_string());
  std::string_view target(r.target().data(), r.target().size());
  size_t q = target.find('?');
  out.path = std::string(target.substr(0, q));
  if (q != target.npos) out.query = std::string(target.substr(q + 1));
  for (const auto& f : r) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  return out;
}

namespace {

http::Request from_beast(BeastRequest&& r) {
  http::Request out = to_request(r);
  out.body = std::move(r.body());
  return out;
}

bhttp::response<bhttp::string_body> to_beast(http::Response&& r, unsigned version, bool keep_alive) {
  bhttp::response<bhttp::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(r.status));
  for (auto& [k, v] : r.headers) res.insert(k, v);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, ServerOptions opts, Handler handler, UpgradeHandler upgrade)
    : io_(io), opts_(std::move(opts)), handler_(std::move(handler)), upgrade_(std::move(upgrade)), acceptor_(io) {}

Result<uint16_t> HttpServer::start() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) return make_error("config", "invalid_listen", "Invalid listen host `" + opts_.host + "`.");
  tcp::endpoint ep(addr, opts_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error("config", "listen_failed",
                      "Cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + ": " + ec.message());
  uint16_t port = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  return port;
}

void HttpServer::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

asio::awaitable<void> HttpServer::accept_loop() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(
        asio::make_strand(io_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto ex = socket.get_executor();
    asio::co_spawn(ex, session(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(opts_.max_body_bytes);
    parser.header_limit(64 * 1024);
    stream.expires_after(opts_.idle_timeout);
    boost::system::error_code ec;
    co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::eof || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted)
        break;
      // Malformed or oversized: answer once with the spec's JSON error, close.
      Error err = ec == bhttp::error::body_limit
                      ? make_error("message", "incoming_too_long", "Request body is too large.")
                      : make_error("actor", "invalid_request", "Malformed HTTP request: " + ec.message());
      auto res = to_beast(http::error_response(err, ec == bhttp::error::body_limit ? 413 : 400), 11, false);
      stream.expires_after(std::chrono::seconds(5));
      co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    auto req = parser.release();
    if (boost::beast::websocket::is_upgrade(req)) {
      stream.expires_never();
      co_await upgrade_(std::move(req), std::move(stream));
      co_return;
    }
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    stream.expires_never();
    http::Response out;
    try {
      out = co_await handler_(from_beast(std::move(req)));
    } catch (const std::exception& e) {
      spdlog::error("request handler threw: {}", e.what());
      out = http::error_response(internal_error());
    }
    auto res = to_beast(std::move(out), version, keep_alive);
    stream.expires_after(opts_.idle_timeout);
    co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep_alive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace anvil::gateway
