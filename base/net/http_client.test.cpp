// The outbound client against the in-process fake server (tests/fakes).
#include "base/net/http_client.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "tests/fakes/fake_http.hpp"

namespace anvil::net {
namespace {

using fakes::FakeHttpServer;
using fakes::FakeResponse;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;

long elapsed_ms(Clock::time_point since) {
  return long(std::chrono::duration_cast<milliseconds>(Clock::now() - since).count());
}

// A node in miniature: an io_context on two threads, callers on strands.
class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override { start(ClientOptions{}); }
  void TearDown() override { shutdown(); }

  void start(ClientOptions opts) {
    client = std::make_unique<HttpClient>(io, std::move(opts));
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io.run(); });
  }
  void shutdown() {
    client.reset();
    work.reset();
    for (auto& t : threads) t.join();
    threads.clear();
  }

  template <typename T>
  T run(asio::awaitable<T> op) {
    return asio::co_spawn(asio::make_strand(io), std::move(op), asio::use_future).get();
  }
  Result<HttpResponse> get(HttpRequest req) { return run(client->request(std::move(req))); }

  static HttpRequest fast(std::string url) {
    HttpRequest r;
    r.url = std::move(url);
    r.retry.base_backoff = milliseconds(5);
    r.retry.max_backoff = milliseconds(20);
    return r;
  }

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
  std::vector<std::thread> threads;
  std::unique_ptr<HttpClient> client;
  FakeHttpServer server;
};

TEST_F(HttpClientTest, GetReturnsStatusLowercasedHeadersAndBody) {
  server.route("GET", "/hello", FakeResponse::text(200, "hi there").with_header("X-Custom", "v"));
  auto r = get(fast(server.url("/hello?x=1")));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hi there");
  EXPECT_EQ(r->header("x-custom"), "v");
  EXPECT_EQ(r->attempts, 1u);
  auto seen = server.requests("GET", "/hello");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/hello?x=1");
  EXPECT_EQ(seen[0].header("user-agent"), "anvil");
  EXPECT_EQ(seen[0].header("x-request-id")->size(), 32u);  // generated
}

TEST_F(HttpClientTest, PostSendsBodyAndHeaders) {
  server.route("POST", "/v1/messages", FakeResponse::json(201, R"({"id":"m1"})"));
  HttpRequest req = fast(server.url("/v1/messages"));
  req.method = "POST";
  req.headers = {{"content-type", "application/json"}, {"x-api-key", "k"}};
  req.body = R"({"model":"x"})";
  auto r = get(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 201);
  auto seen = server.requests("POST", "/v1/messages");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body, req.body);
  EXPECT_EQ(seen[0].header("x-api-key"), "k");
  EXPECT_EQ(seen[0].header("content-length"), std::to_string(req.body.size()));
}

TEST_F(HttpClientTest, Retries503ThenSucceedsWithTheSameIdempotencyKeyAndRequestIdOnEveryAttempt) {
  server.script("POST", "/charge",
                {FakeResponse::text(503, "busy"), FakeResponse::text(503, "busy"), FakeResponse::text(200, "done")});
  HttpRequest req = fast(server.url("/charge"));
  req.method = "POST";
  req.idempotency_key = "idem-42";
  auto r = get(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "done");
  EXPECT_EQ(r->attempts, 3u);
  auto seen = server.requests("POST", "/charge");
  ASSERT_EQ(seen.size(), 3u);
  const auto request_id = seen[0].header("x-request-id");
  ASSERT_TRUE(request_id && !request_id->empty());
  for (const auto& s : seen) {
    EXPECT_EQ(s.header("idempotency-key"), "idem-42");
    EXPECT_EQ(s.header("x-request-id"), request_id);
  }
  EXPECT_EQ(client->metrics().retries, 2u);
}

TEST_F(HttpClientTest, PostWithoutIdempotencyKeyIsNotRetriedOn503) {
  server.script("POST", "/once", {FakeResponse::text(503, "busy"), FakeResponse::text(200, "done")});
  HttpRequest req = fast(server.url("/once"));
  req.method = "POST";
  auto r = get(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.http_status");
  EXPECT_EQ(server.requests("POST", "/once").size(), 1u);
}

TEST_F(HttpClientTest, A429WithRetryAfterOneSecondWaitsAboutOneSecond) {
  server.script("GET", "/limited", {FakeResponse::retry_after(429, "1"), FakeResponse::text(200, "ok")});
  const auto t0 = Clock::now();
  auto r = get(fast(server.url("/limited")));
  const long ms = elapsed_ms(t0);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->attempts, 2u);
  EXPECT_GE(ms, 1000);
  EXPECT_LT(ms, 1800);
}

TEST_F(HttpClientTest, A400FailsAtOnceWithHttpStatusAndStatusMetadata) {
  server.route("GET", "/bad", FakeResponse::json(400, R"({"error":"bad model"})"));
  auto r = get(fast(server.url("/bad")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.http_status");
  ASSERT_TRUE(r.error().metadata.has_value());
  const Value& meta = *r.error().metadata;
  ASSERT_NE(meta.find("status"), nullptr);
  EXPECT_EQ(meta.find("status")->as_int(), 400);
  EXPECT_EQ(meta.find("body")->as_string(), R"({"error":"bad model"})");
  EXPECT_EQ(meta.find("attempts")->as_int(), 1);
  EXPECT_EQ(server.requests("GET", "/bad").size(), 1u);
}

TEST_F(HttpClientTest, AnErrorBodyInMetadataIsCutAt4KiB) {
  server.route("GET", "/big-error", FakeResponse::text(404, std::string(10000, 'e')));
  auto r = get(fast(server.url("/big-error")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().metadata->find("body")->as_string().size(), 4096u);
}

TEST_F(HttpClientTest, ARedirectIsReturnedNotFollowed) {
  server.route("GET", "/old", FakeResponse::text(301, "").with_header("Location", "/new"));
  auto r = get(fast(server.url("/old")));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 301);
  EXPECT_EQ(r->header("location"), "/new");
}

TEST_F(HttpClientTest, AHangingServerIsOutboundTimeoutWithinTotalTimeout) {
  server.route("GET", "/hang", FakeResponse::hang());
  HttpRequest req = fast(server.url("/hang"));
  req.total_timeout = milliseconds(300);
  req.retry.max_attempts = 1;
  const auto t0 = Clock::now();
  auto r = get(req);
  const long ms = elapsed_ms(t0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.timeout");
  EXPECT_GE(ms, 290);
  EXPECT_LT(ms, 800);
  EXPECT_EQ(client->metrics().timeouts, 1u);
}

TEST_F(HttpClientTest, AConnectionResetMidBodyIsRetriedThenOutboundConnectionReset) {
  server.route("GET", "/cut", FakeResponse::reset_mid_body(std::string(100000, 'x'), 1000));
  HttpRequest req = fast(server.url("/cut"));
  req.retry.max_attempts = 3;
  auto r = get(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.connection_reset") << r.error().message;
  EXPECT_EQ(r.error().metadata->find("attempts")->as_int(), 3);
  EXPECT_EQ(server.requests("GET", "/cut").size(), 3u);
}

TEST_F(HttpClientTest, AResetFollowedBySuccessReturnsTheSuccess) {
  server.script("GET", "/flaky", {FakeResponse::reset_mid_body("0123456789", 3), FakeResponse::text(200, "whole")});
  auto r = get(fast(server.url("/flaky")));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "whole");
  EXPECT_EQ(r->attempts, 2u);
}

TEST_F(HttpClientTest, ARefusedConnectionIsOutboundConnectFailed) {
  uint16_t port;
  {
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }  // closed: nothing listens there now
  HttpRequest req = fast("http://127.0.0.1:" + std::to_string(port) + "/");
  req.retry.max_attempts = 2;
  auto r = get(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.connect_failed") << r.error().message;
  EXPECT_EQ(r.error().metadata->find("attempts")->as_int(), 2);
}

TEST_F(HttpClientTest, APostWithoutIdempotencyKeyIsRetriedWhenNothingWasSent) {
  uint16_t port;
  {
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  HttpRequest req = fast("http://127.0.0.1:" + std::to_string(port) + "/");
  req.method = "POST";
  req.retry.max_attempts = 3;
  auto r = get(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.connect_failed");
  EXPECT_EQ(r.error().metadata->find("attempts")->as_int(), 3);
}

TEST_F(HttpClientTest, AnUnresolvableHostIsOutboundConnectFailed) {
  HttpRequest req = fast("http://no-such-host.invalid/");
  req.retry.max_attempts = 1;
  auto r = get(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.connect_failed") << r.error().message;
}

TEST_F(HttpClientTest, AnInvalidUrlIsOutboundInvalidUrlWithoutAnyAttempt) {
  auto r = get(fast("ftp://example.com/"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.invalid_url");
  EXPECT_EQ(client->metrics().attempts, 0u);
}

TEST_F(HttpClientTest, AHeaderWithALineBreakIsOutboundInvalidRequest) {
  HttpRequest req = fast(server.url("/x"));
  req.headers = {{"x-evil", "a\r\nInjected: 1"}};
  auto r = get(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.invalid_request");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(HttpClientTest, TheRetryBudgetBoundsTotalTime) {
  server.route("GET", "/hang", FakeResponse::hang());
  HttpRequest req = fast(server.url("/hang"));
  req.total_timeout = milliseconds(5000);
  req.retry.max_attempts = 100;
  req.retry.retry_budget = milliseconds(400);
  const auto t0 = Clock::now();
  auto r = get(req);
  const long ms = elapsed_ms(t0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.timeout");
  EXPECT_GE(ms, 390);
  EXPECT_LT(ms, 800);
}

TEST_F(HttpClientTest, TheRetryBudgetStopsRetriesOfAnAlways503Route) {
  server.route("GET", "/down", FakeResponse::text(503, "down"));
  HttpRequest req = fast(server.url("/down"));
  req.retry.max_attempts = 1000;
  req.retry.base_backoff = milliseconds(50);
  req.retry.max_backoff = milliseconds(100);
  req.retry.retry_budget = milliseconds(500);
  const auto t0 = Clock::now();
  auto r = get(req);
  const long ms = elapsed_ms(t0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.http_status");
  EXPECT_LT(ms, 700);
  EXPECT_GT(server.requests("GET", "/down").size(), 3u);
}

TEST_F(HttpClientTest, ARetryAfterBeyondTheBudgetFailsWithoutWaiting) {
  server.route("GET", "/later", FakeResponse::retry_after(503, "30"));
  HttpRequest req = fast(server.url("/later"));
  req.retry.retry_budget = milliseconds(2000);
  const auto t0 = Clock::now();
  auto r = get(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().metadata->find("status")->as_int(), 503);
  EXPECT_LT(elapsed_ms(t0), 500);
  EXPECT_EQ(server.requests().size(), 1u);
}

struct Delivery {
  std::vector<SseEvent> events;
  std::vector<Clock::time_point> at;
  Result<HttpResponse> result;
  Clock::time_point done;
  bool on_strand = true;
};

asio::awaitable<Delivery> collect_events(HttpClient& client, HttpRequest req, Strand strand) {
  auto d = std::make_shared<Delivery>();
  auto on_event = [d, strand](const SseEvent& e) {
    d->events.push_back(e);
    d->at.push_back(Clock::now());
    d->on_strand = d->on_strand && strand.running_in_this_thread();
  };
  d->result = co_await client.stream(std::move(req), on_event);
  d->done = Clock::now();
  d->on_strand = d->on_strand && strand.running_in_this_thread();
  co_return std::move(*d);
}

TEST_F(HttpClientTest, SseEventsAreDeliveredInOrderAsTheyArrive) {
  using fakes::SseChunk;
  server.route("POST", "/v1/messages",
               FakeResponse::events({{milliseconds(0), "event: message_start\ndata: {\"n\":0}\n\n"},
                                     {milliseconds(100), "event: content_block_delta\nid: 7\ndata: {\"n\":1}\n\n"},
                                     {milliseconds(100), ": ping\n\nevent: message_stop\ndata: {\"n\":2}\n\n"}}));
  HttpRequest req = fast(server.url("/v1/messages"));
  req.method = "POST";
  req.idempotency_key = "sse-1";
  Strand strand = asio::make_strand(io);
  Delivery d = asio::co_spawn(strand, collect_events(*client, req, strand), asio::use_future).get();
  ASSERT_TRUE(d.result.ok()) << d.result.error().message;
  EXPECT_EQ(d.result->status, 200);
  ASSERT_EQ(d.events.size(), 3u);
  EXPECT_EQ(d.events[0].event, "message_start");
  EXPECT_EQ(d.events[1].event, "content_block_delta");
  EXPECT_EQ(d.events[1].id, "7");
  EXPECT_EQ(d.events[2].event, "message_stop");
  EXPECT_EQ(d.events[2].data, "{\"n\":2}");
  EXPECT_GE(d.done - d.at[0], milliseconds(150));  // the first event did not wait for the end
  EXPECT_TRUE(d.on_strand);
  EXPECT_EQ(server.requests()[0].header("accept"), "text/event-stream");
}

TEST_F(HttpClientTest, AStreamAnswered500IsRetriedBeforeAnyEventAndErrorsLikeRequest) {
  server.script("GET", "/events",
                {FakeResponse::text(500, "oops"), FakeResponse::events({{milliseconds(0), "data: x\n\n"}})});
  Strand strand = asio::make_strand(io);
  Delivery d = asio::co_spawn(strand, collect_events(*client, fast(server.url("/events")), strand), asio::use_future).get();
  ASSERT_TRUE(d.result.ok()) << d.result.error().message;
  EXPECT_EQ(d.result->attempts, 2u);
  ASSERT_EQ(d.events.size(), 1u);

  server.route("GET", "/forbidden", FakeResponse::text(403, "no"));
  d = asio::co_spawn(strand, collect_events(*client, fast(server.url("/forbidden")), strand), asio::use_future).get();
  ASSERT_FALSE(d.result.ok());
  EXPECT_EQ(d.result.error().metadata->find("status")->as_int(), 403);
}

TEST_F(HttpClientTest, AStreamCutAfterAnEventIsNotRetried) {
  server.route("GET", "/cut-stream", FakeResponse::reset_mid_body("data: partial\n\ndata: never", 15));
  // reset_mid_body uses Content-Length framing; the first event is complete.
  Strand strand = asio::make_strand(io);
  Delivery d =
      asio::co_spawn(strand, collect_events(*client, fast(server.url("/cut-stream")), strand), asio::use_future).get();
  ASSERT_FALSE(d.result.ok());
  EXPECT_EQ(d.result.error().qualified(), "outbound.connection_reset");
  EXPECT_EQ(d.events.size(), 1u);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(HttpClientTest, SequentialRequestsReuseOneKeepAliveConnection) {
  server.route("GET", "/k", FakeResponse::text(200, "k"));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(get(fast(server.url("/k"))).ok());
  EXPECT_EQ(server.connections(), 1u);
  for (const auto& r : server.requests()) EXPECT_EQ(r.connection, 1u);
  EXPECT_EQ(client->metrics().connections_opened, 1u);
  EXPECT_EQ(client->metrics().connections_reused, 4u);
  EXPECT_EQ(client->idle_connections(), 1u);
}

TEST_F(HttpClientTest, APooledConnectionTheServerClosedIsReplacedWithoutUsingAnAttempt) {
  server.script("GET", "/s", {FakeResponse::text(200, "1"), FakeResponse::close(), FakeResponse::text(200, "2")});
  ASSERT_TRUE(get(fast(server.url("/s"))).ok());
  auto r = get(fast(server.url("/s")));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "2");
  EXPECT_EQ(r->attempts, 1u);
  EXPECT_EQ(server.connections(), 2u);
}

asio::awaitable<bool> request_on_strand(HttpClient& client, HttpRequest req, Strand strand) {
  Result<HttpResponse> r = co_await client.request(std::move(req));
  co_return r.ok() && strand.running_in_this_thread();
}

TEST_F(HttpClientTest, RequestCompletesOnTheCallersStrand) {
  server.route("GET", "/where", FakeResponse::text(200, "here").after(milliseconds(5)));
  // Many strands share pooled connections opened by other strands.
  std::vector<std::future<bool>> results;
  for (int i = 0; i < 50; ++i) {
    Strand strand = asio::make_strand(io);
    results.push_back(
        asio::co_spawn(strand, request_on_strand(*client, fast(server.url("/where")), strand), asio::use_future));
  }
  for (auto& f : results) EXPECT_TRUE(f.get());
  for (int i = 0; i < 20; ++i) {
    Strand strand = asio::make_strand(io);
    EXPECT_TRUE(
        asio::co_spawn(strand, request_on_strand(*client, fast(server.url("/where")), strand), asio::use_future).get());
  }
  EXPECT_GT(client->metrics().connections_reused, 0u);
}

TEST_F(HttpClientTest, AThousandConcurrentRequestsToA200msRouteFinishWellUnderTwoSecondsOnTwoThreads) {
  server.route("GET", "/slow", FakeResponse::text(200, "slow").after(milliseconds(200)));
  constexpr int n = 1000;
  std::atomic<int> ok{0}, left{n};
  std::promise<void> all_done;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(asio::make_strand(io), client->request(fast(server.url("/slow"))),
                   [&](std::exception_ptr, Result<HttpResponse> r) {
                     if (r.ok() && r->status == 200) ok++;
                     if (--left == 0) all_done.set_value();
                   });
  }
  all_done.get_future().get();
  const long ms = elapsed_ms(t0);
  EXPECT_EQ(ok, n);
  EXPECT_LT(ms, 1500);
  EXPECT_EQ(server.requests().size(), size_t(n));
  std::printf("1000 concurrent requests to a 200 ms route: %ld ms, %llu connections\n", ms,
              static_cast<unsigned long long>(server.connections()));
}

TEST_F(HttpClientTest, MetricsTextUsesAnvilOutboundNames) {
  server.route("GET", "/m", FakeResponse::text(200, "m"));
  ASSERT_TRUE(get(fast(server.url("/m"))).ok());
  const std::string text = client->metrics_text();
  EXPECT_NE(text.find("anvil_outbound_requests_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("anvil_outbound_responses_total{class=\"2xx\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("anvil_outbound_duration_seconds_count 1\n"), std::string::npos);
}

class HttpsTest : public HttpClientTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/anvil-tls-XXXXXX";
    dir = mkdtemp(tmpl);
    files = fakes::write_self_signed_cert(dir);
    tls_server = std::make_unique<FakeHttpServer>(FakeHttpServer::Options{1, files, true});
    tls_server->route("GET", "/secure", FakeResponse::text(200, "secret"));
  }
  void TearDown() override {
    HttpClientTest::TearDown();
    tls_server.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  fakes::TlsFiles files;
  std::unique_ptr<FakeHttpServer> tls_server;
};

TEST_F(HttpsTest, HttpsWorksAgainstAServerWhoseCaIsTrustedAndReusesTheConnection) {
  ClientOptions opts;
  opts.ca_file = files.cert_file;
  start(opts);
  for (int i = 0; i < 3; ++i) {
    auto r = get(fast(tls_server->localhost_url("/secure")));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->body, "secret");
  }
  EXPECT_EQ(tls_server->connections(), 1u);
  EXPECT_EQ(tls_server->requests()[0].header("host"), "localhost:" + std::to_string(tls_server->port()));
}

TEST_F(HttpsTest, HttpsToAnIpAddressChecksTheCertificatesIpSan) {
  ClientOptions opts;
  opts.ca_file = files.cert_file;
  start(opts);
  auto r = get(fast(tls_server->url("/secure")));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST_F(HttpsTest, AnUntrustedCertificateIsOutboundTlsFailedAndNotRetried) {
  start(ClientOptions{});
  auto r = get(fast(tls_server->localhost_url("/secure")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "outbound.tls_failed") << r.error().message;
  EXPECT_EQ(r.error().metadata->find("attempts")->as_int(), 1);
  EXPECT_TRUE(tls_server->requests().empty());
}

}  // namespace
}  // namespace anvil::net
