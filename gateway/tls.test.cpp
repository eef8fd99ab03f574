// TLS on the listener, on real sockets (127.0.0.1) with a self-signed
// certificate: ALPN picks HTTP/2 or HTTP/1.1, HTTP/2 streams reach the same
// handler as HTTP/1.1 requests (streamed and large bodies included), and the
// listener's limits hold for TLS and HTTP/2 connections.
#include "gateway/tls.hpp"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "gateway/http_server.hpp"
#include "gateway/test_client.hpp"
#include "gateway/tls_test_client.hpp"

using namespace anvil;
using namespace anvil::gateway;
using anvil::gateway::testing::H2Client;
using anvil::gateway::testing::RawClient;
using anvil::gateway::testing::TlsClient;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kH2 = {"h2", "http/1.1"};
const std::vector<std::string> kHttp11 = {"http/1.1"};

// A TLS server whose handler answers "<method> <path>?<query> <body bytes>"
// in x-echo and the request body as its body.
class TlsServer {
 public:
  explicit TlsServer(ServerOptions opts = {}, bool http2 = true) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    server_ = std::make_unique<HttpServer>(
        io_, opts, [this](http::Request req) { return handle(std::move(req)); },
        [](BeastRequest, boost::beast::tcp_stream) -> asio::awaitable<void> { co_return; });
    TlsOptions tls;
    tls.self_signed = true;
    tls.http2 = http2;
    auto ctx = make_tls_context(tls);
    if (!ctx.ok()) throw std::runtime_error(ctx.error().message);
    server_->enable_tls(*ctx, [](BeastRequest, TlsStream) -> asio::awaitable<void> { co_return; });
    auto p = server_->start();
    if (!p.ok()) throw std::runtime_error(p.error().message);
    port_ = *p;
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TlsServer() {
    asio::post(io_, [this] { server_->stop(); });
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }
  HttpServer& http() { return *server_; }
  int requests() const { return requests_.load(); }
  int max_in_flight() const { return max_in_flight_.load(); }
  // Each request waits this long in the handler.
  void set_delay(std::chrono::milliseconds d) { delay_ms_ = static_cast<int>(d.count()); }

  template <typename Pred>
  static bool eventually(Pred pred, std::chrono::milliseconds limit = 3000ms) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

 private:
  asio::awaitable<http::Response> handle(http::Request req) {
    ++requests_;
    int now = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(delay_ms_.load()));
    co_await t.async_wait(asio::use_awaitable);
    --in_flight_;
    http::Response r;
    r.set_header("X-Echo", req.method + " " + req.path + "?" + req.query + " " + std::to_string(req.body.size()));
    r.set_header("x-host", std::string(req.header("host").value_or("")));
    r.set_header("Connection", "keep-alive");  // hop-by-hop: must not reach an HTTP/2 client
    r.body = std::move(req.body);
    co_return r;
  }

  asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> requests_{0}, in_flight_{0}, max_in_flight_{0}, delay_ms_{1};
};

std::string payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  return s;
}

TEST(Tls, AClientOfferingOnlyHttp11IsServedHttp11OverTls) {
  TlsServer server;
  TlsClient c(server.port(), kHttp11);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.alpn(), "http/1.1");
  ASSERT_TRUE(c.write("POST /echo?a=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"));
  std::string res = c.read_to_close();
  EXPECT_EQ(res.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_NE(res.find("X-Echo: POST /echo?a=1 5"), std::string::npos) << res;
  EXPECT_EQ(res.substr(res.size() - 5), "hello");
}

TEST(Tls, AClientWithoutAlpnIsServedHttp11) {
  TlsServer server;
  TlsClient c(server.port(), {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.alpn(), "");
  ASSERT_TRUE(c.write("GET /plain HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(c.read_to_close().substr(0, 15), "HTTP/1.1 200 OK");
}

TEST(Tls, AClientOfferingH2GetsHttp2AndItsRequestReachesTheHandler) {
  TlsServer server;
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c.alpn(), "h2");
  H2Client h2(c);
  auto& r = h2.wait(h2.request("GET", "/actors/x?name=a%20b"));
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-echo"), "GET /actors/x?name=a%20b 0");
  EXPECT_EQ(r.header("x-host"), "localhost");  // :authority
  EXPECT_FALSE(r.header("connection"));       // hop-by-hop headers are dropped
  EXPECT_EQ(r.header("content-length"), "0");
}

TEST(Tls, NoHttp2MeansAnH2ClientIsServedHttp11) {
  TlsServer server({}, /*http2=*/false);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.alpn(), "http/1.1");
}

TEST(Tls, ARequestBodyStreamedInPiecesOverH2ReachesTheHandlerWhole) {
  TlsServer server;
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  const int32_t id = h2.request("POST", "/stream", {{"content-type", "application/octet-stream"}}, std::nullopt,
                                /*open_body=*/true);
  ASSERT_GT(id, 0);
  for (int i = 0; i < 3; ++i) {
    h2.send_data(id, "part" + std::to_string(i) + ";", false);
    h2.pump(30ms);  // the pieces travel in separate DATA frames, apart in time
  }
  EXPECT_EQ(server.requests(), 0);  // nothing is dispatched before END_STREAM
  h2.send_data(id, "end", true);
  auto& r = h2.wait(id);
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "part0;part1;part2;end");
}

TEST(Tls, AOneMebibyteBodyGoesThroughH2BothWays) {
  TlsServer server;
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  const std::string body = payload(1 << 20);
  auto& r = h2.wait(h2.request("PUT", "/big", {}, body), 10s);
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-echo"), "PUT /big? 1048576");
  EXPECT_EQ(r.body.size(), body.size());
  EXPECT_TRUE(r.body == body);
}

TEST(Tls, AOneMebibyteResponseRespectsTheClientsDefaultFlowControlWindow) {
  TlsServer server;
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c, /*big_windows=*/false);  // 64 KiB: the body needs ~16 WINDOW_UPDATEs
  const std::string body = payload(1 << 20);
  auto& r = h2.wait(h2.request("PUT", "/big", {}, body), 10s);
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), body.size());
  EXPECT_TRUE(r.body == body);
}

TEST(Tls, AOneMebibyteBodyGoesThroughHttp11OverTls) {
  TlsServer server;
  TlsClient c(server.port(), kHttp11);
  ASSERT_TRUE(c.ok());
  const std::string body = payload(1 << 20);
  ASSERT_TRUE(c.write("PUT /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body));
  std::string res = c.read_to_close(10s);
  ASSERT_GT(res.size(), body.size());
  EXPECT_TRUE(res.substr(res.size() - body.size()) == body);
}

TEST(Tls, StreamsOnOneH2ConnectionAreServedConcurrently) {
  TlsServer server;
  server.set_delay(50ms);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  std::vector<int32_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(h2.request("GET", "/s/" + std::to_string(i)));
  for (size_t i = 0; i < ids.size(); ++i) {
    auto& r = h2.wait(ids[i]);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-echo"), "GET /s/" + std::to_string(i) + "? 0");
  }
  EXPECT_GT(server.max_in_flight(), 1);
}

TEST(Tls, PlainHttpSentToTheTlsPortIsDroppedAndTlsStillWorks) {
  TlsServer server;
  {
    RawClient raw(server.port(), 0);
    ASSERT_TRUE(raw.send_all("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    std::string got;
    EXPECT_TRUE(raw.read_until_closed(got, 3000ms));
    EXPECT_EQ(got.find("HTTP/1.1"), std::string::npos);  // no plain-text answer
  }
  EXPECT_TRUE(TlsServer::eventually([&] { return server.http().tls_handshake_failures() == 1; }));
  EXPECT_TRUE(TlsServer::eventually([&] { return server.http().open_connections() == 0; }));
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  EXPECT_EQ(h2.wait(h2.request("GET", "/after")).status, 200);
}

TEST(Tls, AClientThatNeverHandshakesIsDisconnectedAfterTheHandshakeTimeout) {
  ServerOptions opts;
  opts.tls_handshake_timeout = 200ms;
  TlsServer server(opts);
  RawClient raw(server.port(), 0);
  const auto start = std::chrono::steady_clock::now();
  std::string got;
  EXPECT_TRUE(raw.read_until_closed(got, 3000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_TRUE(TlsServer::eventually([&] { return server.http().open_connections() == 0; }));
}

TEST(Tls, AnHttp11RequestOverTlsWhoseHeadersStallIsClosedAfterTheHeaderTimeout) {
  ServerOptions opts;
  opts.header_timeout = 200ms;
  TlsServer server(opts);
  TlsClient c(server.port(), kHttp11);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.write("GET /slow HTTP/1.1\r\nHost: t\r\n"));  // never ends its headers
  const auto start = std::chrono::steady_clock::now();
  c.read_to_close(3000ms);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 2500ms);
  EXPECT_EQ(server.requests(), 0);
  EXPECT_TRUE(TlsServer::eventually([&] { return server.http().open_connections() == 0; }));
}

TEST(Tls, TlsConnectionsCountAgainstTheConnectionLimit) {
  ServerOptions opts;
  opts.max_connections = 1;
  TlsServer server(opts);
  TlsClient first(server.port(), kH2);
  ASSERT_TRUE(first.ok());
  TlsClient second(server.port(), kH2);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(server.http().refused_connections(), 1u);
  H2Client h2(first);
  EXPECT_EQ(h2.wait(h2.request("GET", "/first")).status, 200);
}

TEST(Tls, AnH2ConnectionAdvertisesItsStreamAndHeaderLimits) {
  ServerOptions opts;
  opts.h2_max_concurrent_streams = 7;
  opts.max_header_bytes = 8192;
  TlsServer server(opts);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  h2.wait(h2.request("GET", "/settings"));
  EXPECT_EQ(h2.remote_setting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 7u);
  EXPECT_EQ(h2.remote_setting(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE), 8192u);
}

TEST(Tls, AnH2ClientRunsAtMostTheAdvertisedNumberOfStreamsAtOnce) {
  ServerOptions opts;
  opts.h2_max_concurrent_streams = 2;
  TlsServer server(opts);
  server.set_delay(200ms);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  h2.wait(h2.request("GET", "/warm"));  // the client now knows the limit
  std::vector<int32_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(h2.request("GET", "/s"));
  int ok = 0;
  for (auto id : ids) ok += h2.wait(id).status == 200;
  EXPECT_EQ(server.max_in_flight(), 2);  // the client queued the other two
  EXPECT_EQ(ok, 4);
}

TEST(Tls, AnH2RequestBodyOverTheLimitIsAnswered413) {
  ServerOptions opts;
  opts.max_body_bytes = 1000;
  TlsServer server(opts);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  const int32_t id = h2.request("POST", "/big", {}, std::nullopt, /*open_body=*/true);
  h2.send_data(id, std::string(600, 'x'), false);
  h2.send_data(id, std::string(600, 'x'), false);  // no content-length: caught while streaming
  auto& r = h2.wait(id);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.header("x-rivet-error"), "message.incoming_too_long");
  EXPECT_EQ(server.requests(), 0);
  // The connection stays usable.
  EXPECT_EQ(h2.wait(h2.request("GET", "/next")).status, 200);
}

TEST(Tls, AnH2RequestWhoseContentLengthIsOverTheLimitIsAnswered413AtOnce) {
  ServerOptions opts;
  opts.max_body_bytes = 1000;
  TlsServer server(opts);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  const int32_t id = h2.request("POST", "/big", {{"content-length", "5000"}}, std::nullopt, /*open_body=*/true);
  EXPECT_EQ(h2.wait(id).status, 413);
}

TEST(Tls, H2HeadersOverTheLimitAreAnswered431) {
  ServerOptions opts;
  opts.max_header_bytes = 2048;
  TlsServer server(opts);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  auto& r = h2.wait(h2.request("GET", "/h", {{"x-big", std::string(4000, 'a')}}));
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(server.requests(), 0);
}

TEST(Tls, AnH2StreamWhoseBodyStallsIsResetAfterTheBodyTimeout) {
  ServerOptions opts;
  opts.body_timeout = 200ms;
  TlsServer server(opts);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  const int32_t id = h2.request("POST", "/slow", {}, std::nullopt, /*open_body=*/true);
  h2.send_data(id, "some", false);
  auto& r = h2.wait(id, 3000ms);
  EXPECT_TRUE(r.done);
  EXPECT_TRUE(r.reset);
  EXPECT_EQ(r.close_code, static_cast<uint32_t>(NGHTTP2_CANCEL));
  EXPECT_EQ(server.requests(), 0);
}

TEST(Tls, AnH2HeaderBlockLeftOpenEndsTheConnectionAfterTheHeaderTimeout) {
  ServerOptions opts;
  opts.header_timeout = 200ms;
  TlsServer server(opts);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  // Preface, empty SETTINGS, then HEADERS on stream 1 without END_HEADERS
  // (":method: GET", HPACK static index 2) and no CONTINUATION ever.
  std::string frames("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  frames += std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  frames += std::string("\x00\x00\x01\x01\x00\x00\x00\x00\x01\x82", 10);
  ASSERT_TRUE(c.write(frames));
  const auto start = std::chrono::steady_clock::now();
  c.read_to_close(5000ms);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 4000ms);
  EXPECT_EQ(server.requests(), 0);
  EXPECT_TRUE(TlsServer::eventually([&] { return server.http().open_connections() == 0; }));
}

TEST(Tls, AnIdleH2ConnectionEndsWithGoawayAfterTheIdleTimeout) {
  ServerOptions opts;
  opts.idle_timeout = 200ms;
  TlsServer server(opts);
  TlsClient c(server.port(), kH2);
  ASSERT_TRUE(c.ok());
  H2Client h2(c);
  EXPECT_EQ(h2.wait(h2.request("GET", "/once")).status, 200);
  EXPECT_TRUE(h2.wait_closed(3000ms));
  EXPECT_TRUE(h2.goaway());
  EXPECT_TRUE(TlsServer::eventually([&] { return server.http().open_connections() == 0; }));
}

TEST(Tls, AnH2ConnectionWithGarbageAfterThePrefaceIsClosedWithoutHarm) {
  TlsServer server;
  {
    TlsClient c(server.port(), kH2);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + std::string(64, '\xff')));
    c.read_to_close(3000ms);
  }
  EXPECT_TRUE(TlsServer::eventually([&] { return server.http().open_connections() == 0; }));
  TlsClient c(server.port(), kH2);
  H2Client h2(c);
  EXPECT_EQ(h2.wait(h2.request("GET", "/fine")).status, 200);
}

TEST(Tls, MissingCertificateFilesAreAConfigurationError) {
  TlsOptions opts;
  opts.cert_file = "/nonexistent/cert.pem";
  opts.key_file = "/nonexistent/key.pem";
  auto ctx = make_tls_context(opts);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().code, "tls_cert");
}

}  // namespace
