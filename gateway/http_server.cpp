#include "gateway/http_server.hpp"

#include <sstream>

#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include "gateway/h2_session.hpp"

namespace anvil::gateway {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

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

bool is_loopback(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
  return a.is_loopback();
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

// The whole 503 a connection over the limit gets, written without waiting.
const std::string& too_many_connections_reply() {
  static const std::string text = [] {
    auto res = to_beast(http::error_response(make_error("guard", "too_many_connections",
                                                        "The node has reached its connection limit; retry later."),
                                             503),
                        11, false);
    res.set(bhttp::field::retry_after, "1");
    std::ostringstream os;
    os << res;
    return os.str();
  }();
  return text;
}

bool out_of_descriptors(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors ||
         ec == boost::system::errc::make_error_code(boost::system::errc::too_many_files_open_in_system) ||
         ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

}  // namespace

// Counts one open connection for its whole life (WebSocket included).
// Owns a share of the counter, not a reference into the server: see open_.
struct HttpServer::Slot {
  explicit Slot(std::shared_ptr<std::atomic<size_t>> n) : n_(std::move(n)) {}
  ~Slot() { n_->fetch_sub(1); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  std::shared_ptr<std::atomic<size_t>> n_;
};

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

void HttpServer::enable_tls(std::shared_ptr<asio::ssl::context> ctx, TlsUpgradeHandler upgrade) {
  tls_ctx_ = std::move(ctx);
  tls_upgrade_ = std::move(upgrade);
}

void HttpServer::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

void HttpServer::refuse(tcp::socket& socket) {
  refused_.fetch_add(1);
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  const std::string& reply = too_many_connections_reply();
  // Best effort: a fresh socket's buffer takes it. A TLS client could not
  // read plain text: it only sees the connection close.
  if (!tls_ctx_) socket.write_some(asio::buffer(reply), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

asio::awaitable<void> HttpServer::accept_loop() {
  using namespace std::chrono_literals;
  std::chrono::milliseconds backoff{0};
  auto last_warning = std::chrono::steady_clock::time_point{};
  asio::steady_timer timer(io_);
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(
        asio::make_strand(io_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      accept_failures_.fetch_add(1);
      if (ec == asio::error::connection_aborted) continue;  // the peer gave up in the backlog
      // Out of descriptors (or anything unexpected): the pending connection
      // stays in the backlog and epoll would report it again at once, so wait
      // before retrying; connections that end meanwhile free descriptors.
      backoff = out_of_descriptors(ec) ? std::clamp(backoff * 2, std::chrono::milliseconds(10),
                                                    std::chrono::milliseconds(1000))
                                       : 10ms;
      auto now = std::chrono::steady_clock::now();
      if (now - last_warning > 5s) {
        spdlog::warn("accept failed: {} (retrying in {} ms; {} connections open)", ec.message(), backoff.count(),
                     open_->load());
        last_warning = now;
      }
      timer.expires_after(backoff);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!acceptor_.is_open()) co_return;
      continue;
    }
    backoff = 0ms;
    if (open_->load() >= opts_.max_connections) {
      refuse(socket);
      continue;
    }
    open_->fetch_add(1);
    socket.set_option(tcp::no_delay(true), ec);
    auto ex = socket.get_executor();
    asio::co_spawn(ex, session(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::session(tcp::socket socket) {
  if (tls_ctx_) {
    co_await tls_session(std::move(socket));
    co_return;
  }
  Slot slot(open_);  // a copy of the shared_ptr
  boost::system::error_code peer_ec;
  const bool from_loopback = is_loopback(socket.remote_endpoint(peer_ec).address()) && !peer_ec;
  beast::tcp_stream stream(std::move(socket));
  co_await serve_http1(stream, from_loopback, upgrade_);
}

asio::awaitable<void> HttpServer::tls_session(tcp::socket socket) {
  Slot slot(open_);
  boost::system::error_code ec;
  const bool from_loopback = is_loopback(socket.remote_endpoint(ec).address()) && !ec;
  TlsStream stream(beast::tcp_stream(std::move(socket)), *tls_ctx_);
  beast::get_lowest_layer(stream).expires_after(opts_.tls_handshake_timeout);
  co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    // Plain HTTP on the TLS port, a client that does not trust the
    // certificate, a scanner, a stalled peer: nothing to answer.
    handshake_failures_.fetch_add(1);
    spdlog::debug("TLS handshake failed: {}", ec.message());
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  beast::get_lowest_layer(stream).expires_never();
  if (negotiated_alpn(stream) == "h2") {
    co_await serve_h2(stream, opts_, handler_, from_loopback);
    co_return;
  }
  co_await serve_http1(stream, from_loopback, tls_upgrade_);
}

template <typename Stream, typename Upgrade>
asio::awaitable<void> HttpServer::serve_http1(Stream& stream, bool from_loopback, const Upgrade& upgrade) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  for (;;) {
    boost::system::error_code ec;
    // Idle (keep-alive) until the next request's first byte.
    if (buffer.size() == 0) {
      tcp_layer.expires_after(opts_.idle_timeout);
      size_t n = co_await stream.async_read_some(buffer.prepare(4096), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      buffer.commit(n);
    }
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(opts_.max_body_bytes);
    parser.header_limit(static_cast<uint32_t>(opts_.max_header_bytes));
    tcp_layer.expires_after(opts_.header_timeout);
    co_await bhttp::async_read_header(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && !parser.is_done() && beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
      // The body is within the limit (a larger Content-Length already failed).
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      tcp_layer.expires_after(opts_.write_timeout);
      co_await asio::async_write(stream, asio::buffer(kContinue), asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!ec && !parser.is_done()) {
      tcp_layer.expires_after(opts_.body_timeout);
      co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
          ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
          ec == asio::ssl::error::stream_truncated)
        break;
      // Malformed or oversized: answer once with the spec's JSON error, close.
      Error err = make_error("actor", "invalid_request", "Malformed HTTP request: " + ec.message());
      int status = 400;
      if (ec == bhttp::error::body_limit) {
        err = make_error("message", "incoming_too_long",
                         "Request body is too large. Exceeded limit of " + std::to_string(opts_.max_body_bytes) +
                             " bytes.");
        status = 413;
      } else if (ec == bhttp::error::header_limit) {
        err = make_error("actor", "invalid_request",
                         "Request headers are too large. Exceeded limit of " + std::to_string(opts_.max_header_bytes) +
                             " bytes.");
        status = 431;
      }
      auto res = to_beast(http::error_response(err, status), 11, false);
      tcp_layer.expires_after(std::chrono::seconds(5));
      co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    auto req = parser.release();
    if (boost::beast::websocket::is_upgrade(req) && upgrade) {
      tcp_layer.expires_never();
      co_await upgrade(std::move(req), std::move(stream));
      co_return;
    }
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    tcp_layer.expires_never();
    http::Response out;
    try {
      http::Request hreq = from_beast(std::move(req));
      hreq.from_loopback = from_loopback;
      out = co_await handler_(std::move(hreq));
    } catch (const std::exception& e) {
      spdlog::error("request handler threw: {}", e.what());
      out = http::error_response(internal_error());
    }
    auto res = to_beast(std::move(out), version, keep_alive);
    tcp_layer.expires_after(opts_.write_timeout);
    co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep_alive) break;
  }
  boost::system::error_code ignored;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace anvil::gateway
