// Message limits (HTTP and WebSocket) and the WebSocket write backlog, on a
// real in-process node with the listener on 127.0.0.1.
#include "gateway/ws_session.hpp"

#include <thread>

#include <future>

#include <gtest/gtest.h>

#include "base/value/json.hpp"
#include "gateway/test_client.hpp"
#include "gateway/tls_test_client.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using namespace anvil::gateway;
using anvil::gateway::testing::RawClient;
using anvil::gateway::testing::TlsClient;
using anvil::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

const Registry& registry() {
  static const Registry reg = [] {
    Registry r;
    ActorDefinition def("limits");
    def.initial_state(obj({}))
        // Params {validForMs}: the guard accepts credentials that expire then.
        .on_before_connect_async([](ActorContext& c, ClientRequest req) -> Task<Status> {
          const Value* ms = req.params.is_object() ? req.params.find("validForMs") : nullptr;
          if (ms && ms->is_int()) {
            const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
            c.client_valid_until(now + ms->as_int());
          }
          co_return Ok{};
        })
        .action("echo", [](ActionContext&, const Array& a) -> Result<Value> { return a.empty() ? Value() : a[0]; })
        .action("big",
                [](ActionContext&, const Array& a) -> Result<Value> {
                  return std::string(static_cast<size_t>(a.at(0).as_int()), 'b');
                })
        .action("spam",
                [](ActionContext& c, const Array& a) -> Result<Value> {
                  std::string payload(static_cast<size_t>(a.at(1).as_int()), 's');
                  for (int64_t i = 0; i < a.at(0).as_int(); ++i) c.broadcast("big", {payload});
                  return Value(true);
                })
        // Raw socket: "flood N" answers N messages of 64 KiB.
        .on_websocket([](ActorContext&, const std::shared_ptr<RawWebSocket>&, const RawRequest&)
                          -> Result<WebSocketHandlers> {
          WebSocketHandlers h;
          h.on_message = [](ActorContext&, RawWebSocket& sock, const WsMessage& msg) {
            if (msg.data.rfind("flood ", 0) != 0) return;
            int n = std::stoi(msg.data.substr(6));
            for (int i = 0; i < n; ++i) sock.send_text(std::string(64 * 1024, 'f'));
          };
          return h;
        });
    r.add(std::move(def));
    return r;
  }();
  return reg;
}

// A node with its gateway listening on 127.0.0.1:<port>.
struct Gateway {
  // `tls`: the listener serves TLS (self-signed) instead of plain HTTP.
  explicit Gateway(const std::string& dir, AccessOptions access = {}, WsOptions ws_opts = {}, bool tls = false)
      : node(dir, registry()), routes(node.rt()), guard(access), ws(node.rt(), routes, &guard, ws_opts) {
    ServerOptions o;
    o.port = 0;
    server = std::make_unique<HttpServer>(
        node.io(), o, [](http::Request) -> asio::awaitable<http::Response> { co_return http::Response{}; },
        [this](BeastRequest req, boost::beast::tcp_stream s) { return ws.handle(std::move(req), std::move(s)); });
    if (tls) {
      TlsOptions t;
      t.self_signed = true;
      server->enable_tls(*make_tls_context(t),
                         [this](BeastRequest req, TlsStream s) { return ws.handle(std::move(req), std::move(s)); });
    }
    port = *server->start();
    id = node.get_or_create("limits");
  }
  // The server stops on the node's io before any member goes (a stop posted
  // without waiting could run after `server` was destroyed), then the io
  // stops, so no session handler runs while ws, guard and routes are torn
  // down (the node joins its threads last).
  ~Gateway() {
    std::promise<void> stopped;
    asio::post(node.io(), [this, &stopped] {
      server->stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    std::promise<void> drained;  // handlers the stop queued run before this one
    asio::post(node.io(), [&drained] { drained.set_value(); });
    drained.get_future().wait();
    node.io().stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a handler already running finishes
  }

  http::Response action(const std::string& name, std::string body) {
    http::Request req;
    req.method = "POST";
    req.path = "/gateway/" + id + "/action/" + name;
    req.body = std::move(body);
    return node.run(routes.handle(req, req.path));
  }

  anvil::testing::Node node;
  ActorRoutes routes;
  AccessGuard guard;
  WsGateway ws;
  std::unique_ptr<HttpServer> server;
  uint16_t port = 0;
  std::string id;
};

// --- a minimal WebSocket client ---

std::string upgrade_request(const std::string& path, const std::string& protocols) {
  return "GET " + path +
         " HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Protocol: " +
         protocols + "\r\n\r\n";
}

// One masked client text frame.
std::string client_frame(std::string_view payload) {
  std::string f;
  f += static_cast<char>(0x81);
  const uint8_t mask[4] = {1, 2, 3, 4};
  if (payload.size() < 126) {
    f += static_cast<char>(0x80 | payload.size());
  } else if (payload.size() < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xff);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((uint64_t(payload.size()) >> (8 * i)) & 0xff);
  }
  f.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
  return f;
}

struct ServerFrame {
  uint8_t opcode;
  std::string payload;
};

// Splits unmasked server frames off the front of `buf` (complete ones only).
std::vector<ServerFrame> take_frames(std::string& buf) {
  std::vector<ServerFrame> out;
  size_t pos = 0;
  for (;;) {
    if (buf.size() - pos < 2) break;
    const auto* p = reinterpret_cast<const uint8_t*>(buf.data() + pos);
    uint64_t len = p[1] & 0x7f;
    size_t head = 2;
    if (len == 126) {
      if (buf.size() - pos < 4) break;
      len = (uint64_t(p[2]) << 8) | p[3];
      head = 4;
    } else if (len == 127) {
      if (buf.size() - pos < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      head = 10;
    }
    if (buf.size() - pos < head + len) break;
    out.push_back({static_cast<uint8_t>(p[0] & 0x0f), buf.substr(pos + head, len)});
    pos += head + len;
  }
  buf.erase(0, pos);
  return out;
}

// Sends the upgrade and reads the 101; `rest` gets what came after it.
void upgrade(RawClient& c, const std::string& path, const std::string& protocols, std::string& rest) {
  ASSERT_TRUE(c.send_all(upgrade_request(path, protocols)));
  rest.clear();
  ASSERT_TRUE(c.read_until(rest, "\r\n\r\n", 3000ms));
  ASSERT_EQ(rest.rfind("HTTP/1.1 101", 0), 0u) << rest;
  rest.erase(0, rest.find("\r\n\r\n") + 4);
}

// Connects to /connect (json) and reads the 101 and the Init message.
void open_connection(Gateway& g, RawClient& c) {
  std::string in;
  upgrade(c, "/gateway/" + g.id + "/connect", "rivet, rivet_encoding.json", in);
  while (take_frames(in).empty()) ASSERT_EQ(c.read_some(in, 3000ms), RawClient::Read::Data);
}

std::string action_request(int id, const std::string& name, const std::string& args_json) {
  return R"({"body":{"tag":"ActionRequest","val":{"id":)" + std::to_string(id) + R"(,"name":")" + name +
         R"(","args":)" + args_json + "}}}";
}

// Reads frames until one satisfies `pred`.
std::optional<ServerFrame> read_frame(RawClient& c, std::string& buf,
                                      const std::function<bool(const ServerFrame&)>& pred) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    for (auto& f : take_frames(buf))
      if (pred(f)) return f;
    if (c.read_some(buf, 1000ms) == RawClient::Read::Closed) {
      for (auto& f : take_frames(buf))
        if (pred(f)) return f;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

uint16_t close_code(const ServerFrame& f) {
  return f.payload.size() >= 2 ? static_cast<uint16_t>((uint8_t(f.payload[0]) << 8) | uint8_t(f.payload[1])) : 0;
}

// Reads until the close frame and checks its code and reason.
void expect_close(RawClient& c, std::string& buf, uint16_t code, const std::string& reason) {
  auto close = read_frame(c, buf, [](const ServerFrame& f) { return f.opcode == 0x8; });
  ASSERT_TRUE(close) << "no close frame";
  EXPECT_EQ(close_code(*close), code);
  EXPECT_EQ(close->payload.substr(2), reason);
}

}  // namespace

TEST(MessageLimits, DefaultsAreRivetKits64KiBInAnd1MiBOut) {
  MessageLimits m;
  EXPECT_EQ(m.max_incoming, 65536u);
  EXPECT_EQ(m.max_outgoing, 1048576u);
}

TEST(MessageLimits, AnHttpActionBodyOverTheIncomingLimitIs400IncomingTooLong) {
  auto dir = temp_dir("limits-http-in");
  Gateway g(dir);
  auto ok = g.action("echo", R"({"args":[")" + std::string(60'000, 'a') + R"("]})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  auto res = g.action("echo", R"({"args":[")" + std::string(70'000, 'a') + R"("]})");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.header("x-rivet-error"), "message.incoming_too_long");
}

TEST(MessageLimits, AnHttpActionReplyOverTheOutgoingLimitIs400OutgoingTooLong) {
  auto dir = temp_dir("limits-http-out");
  Gateway g(dir);
  EXPECT_EQ(g.action("big", R"({"args":[1000000]})").status, 200);
  auto res = g.action("big", R"({"args":[1100000]})");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.header("x-rivet-error"), "message.outgoing_too_long");
}

TEST(MessageLimits, AWebSocketFrameOverTheIncomingLimitClosesTheConnection1011IncomingTooLong) {
  auto dir = temp_dir("limits-ws-in");
  Gateway g(dir);
  RawClient c(g.port, 0);
  open_connection(g, c);
  ASSERT_TRUE(c.send_all(client_frame(action_request(1, "echo", "[\"" + std::string(70'000, 'a') + "\"]"))));
  std::string buf;
  expect_close(c, buf, 1011, "message.incoming_too_long");
}

TEST(MessageLimits, AWebSocketReplyOverTheOutgoingLimitFailsThatActionAndKeepsTheConnection) {
  auto dir = temp_dir("limits-ws-out");
  Gateway g(dir);
  RawClient c(g.port, 0);
  open_connection(g, c);
  ASSERT_TRUE(c.send_all(client_frame(action_request(1, "big", "[1100000]"))));
  std::string buf;
  auto err = read_frame(c, buf, [](const ServerFrame& f) { return f.opcode == 0x1; });
  ASSERT_TRUE(err);
  EXPECT_NE(err->payload.find("\"Error\""), std::string::npos) << err->payload;
  EXPECT_NE(err->payload.find("outgoing_too_long"), std::string::npos) << err->payload;
  ASSERT_TRUE(c.send_all(client_frame(action_request(2, "echo", "[\"still here\"]"))));
  auto reply = read_frame(c, buf, [](const ServerFrame& f) { return f.opcode == 0x1; });
  ASSERT_TRUE(reply);
  EXPECT_NE(reply->payload.find("still here"), std::string::npos) << reply->payload;
}

TEST(WebSocketBacklog, AClientThatNeverReadsIsClosed1008OnceItsBacklogPassesTheLimitAndTheNodeStopsQueueing) {
  auto dir = temp_dir("ws-backlog");
  WsOptions wo;
  wo.max_pending_write_bytes = 256 * 1024;
  Gateway g(dir, {}, wo);
  RawClient c(g.port, /*rcvbuf=*/4096);
  open_connection(g, c);
  ASSERT_TRUE(c.send_all(client_frame(R"({"body":{"tag":"SubscriptionRequest","val":{"eventName":"big","subscribe":true}}})")));
  // An action after the subscription answers once the subscription applies.
  ASSERT_TRUE(c.send_all(client_frame(action_request(1, "echo", "[\"sync\"]"))));
  std::string buf;
  ASSERT_TRUE(read_frame(c, buf, [](const ServerFrame& f) { return f.payload.find("sync") != std::string::npos; }));

  // 200 events of 64 KiB (12.5 MiB) for a client that does not read.
  constexpr int kEvents = 200;
  ASSERT_TRUE(g.node.call(g.id, "spam", {kEvents, 64 * 1024}).ok());
  std::this_thread::sleep_for(200ms);

  // Reading now, the client finds a bounded prefix of the events, then the
  // close frame, then the end of the connection.
  std::string all = buf;
  ASSERT_TRUE(c.read_until_closed(all, 15s)) << "the node must end the connection";
  size_t events = 0;
  std::optional<ServerFrame> close;
  for (auto& f : take_frames(all)) {
    if (f.opcode == 0x1 && f.payload.find("\"Event\"") != std::string::npos) ++events;
    if (f.opcode == 0x8) close = f;
  }
  EXPECT_LT(events, static_cast<size_t>(kEvents));
  ASSERT_TRUE(close) << "no close frame after " << events << " events";
  EXPECT_EQ(close_code(*close), 1008);
  EXPECT_EQ(close->payload.substr(2), "message.outgoing_backlog_exceeded");
}

TEST(WebSocketBacklog, ARawWebSocketClientThatNeverReadsIsClosed1008AndTheNodeStopsQueueing) {
  auto dir = temp_dir("ws-raw-backlog");
  WsOptions wo;
  wo.max_pending_write_bytes = 256 * 1024;
  Gateway g(dir, {}, wo);
  RawClient c(g.port, /*rcvbuf=*/4096);
  std::string in;
  upgrade(c, "/gateway/" + g.id + "/websocket/", "rivet", in);
  constexpr int kMessages = 200;  // 12.5 MiB for a client that does not read
  ASSERT_TRUE(c.send_all(client_frame("flood " + std::to_string(kMessages))));
  std::this_thread::sleep_for(300ms);

  ASSERT_TRUE(c.read_until_closed(in, 15s)) << "the node must end the connection";
  size_t messages = 0;
  std::optional<ServerFrame> close;
  for (auto& f : take_frames(in)) {
    if (f.opcode == 0x1) ++messages;
    if (f.opcode == 0x8) close = f;
  }
  EXPECT_LT(messages, static_cast<size_t>(kMessages));
  ASSERT_TRUE(close) << "no close frame after " << messages << " messages";
  EXPECT_EQ(close_code(*close), 1008);
  EXPECT_EQ(close->payload.substr(2), "message.outgoing_backlog_exceeded");
}

// Without the token (or with a wrong one) the upgrade completes and the
// socket closes 1011 api.forbidden: the form a WebSocket client can read.
static void expect_forbidden(Gateway& g, const std::string& path, const std::string& protocols) {
  RawClient c(g.port, 0);
  std::string in;
  upgrade(c, path, protocols, in);
  SCOPED_TRACE(path);
  expect_close(c, in, 1011, "api.forbidden");
}

TEST(GatewayTokens, AWebSocketWithoutTheTokenOrWithAWrongOneIsClosed1011ApiForbiddenAndWithItOpens) {
  auto dir = temp_dir("ws-token");
  Gateway g(dir, AccessOptions{"s3cr.et", ""});
  expect_forbidden(g, "/gateway/" + g.id + "/connect", "rivet, rivet_encoding.json");
  expect_forbidden(g, "/gateway/" + g.id + "@nope/connect", "rivet, rivet_encoding.json");
  expect_forbidden(g, "/connect",
                   "rivet, rivet_encoding.json, rivet_target.actor, rivet_actor." + g.id + ", rivet_token.nope");

  RawClient ok(g.port, 0);
  std::string in;
  upgrade(ok, "/connect", "rivet, rivet_encoding.json, rivet_target.actor, rivet_actor." + g.id + ", rivet_token.s3cr.et",
          in);
  auto init = read_frame(ok, in, [](const ServerFrame& f) { return f.opcode == 0x1; });
  ASSERT_TRUE(init);
  EXPECT_NE(init->payload.find("\"Init\""), std::string::npos) << init->payload;
}

// Credentials that expire (ActorContext::client_valid_until in the guard)
// end the WebSocket then: the client reconnects with fresh ones.
TEST(CredentialExpiry, AConnectionIsClosed1011TokenExpiredWhenItsCredentialsExpire) {
  auto dir = temp_dir("ws-expiry");
  Gateway g(dir);
  RawClient c(g.port, 0);
  const std::string params = "rivet_conn_params.%7B%22validForMs%22%3A400%7D";  // {"validForMs":400}
  std::string in;
  upgrade(c, "/gateway/" + g.id + "/connect", "rivet, rivet_encoding.json, " + params, in);
  const auto opened = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.send_all(client_frame(action_request(1, "echo", "[\"before\"]"))));
  ASSERT_TRUE(read_frame(c, in, [](const ServerFrame& f) { return f.payload.find("before") != std::string::npos; }))
      << "the connection works until then";
  ASSERT_TRUE(c.read_until_closed(in, 5s)) << "the node must end the connection";
  std::optional<ServerFrame> error, close;
  for (auto& f : take_frames(in)) {
    if (f.opcode == 0x1 && f.payload.find("\"Error\"") != std::string::npos) error = f;
    if (f.opcode == 0x8) close = f;
  }
  ASSERT_TRUE(error) << "an Error message before the close";
  EXPECT_NE(error->payload.find("token_expired"), std::string::npos) << error->payload;
  ASSERT_TRUE(close);
  EXPECT_GE(std::chrono::steady_clock::now() - opened, 300ms);
  EXPECT_EQ(close_code(*close), 1011);
  EXPECT_EQ(close->payload.substr(2), "auth.token_expired");
}

TEST(CredentialExpiry, ARawWebSocketIsClosed1008TokenExpiredWhenItsCredentialsExpire) {
  auto dir = temp_dir("ws-raw-expiry");
  Gateway g(dir);
  RawClient c(g.port, 0);
  const std::string params = "rivet_conn_params.%7B%22validForMs%22%3A300%7D";
  std::string in;
  upgrade(c, "/gateway/" + g.id + "/websocket/", "rivet, " + params, in);
  expect_close(c, in, 1008, "auth.token_expired");
}

TEST(CredentialExpiry, AConnectionWithoutAnExpiryStaysOpen) {
  auto dir = temp_dir("ws-no-expiry");
  Gateway g(dir);
  RawClient c(g.port, 0);
  open_connection(g, c);
  std::this_thread::sleep_for(600ms);
  ASSERT_TRUE(c.send_all(client_frame(action_request(1, "echo", "[\"later\"]"))));
  std::string in;
  EXPECT_TRUE(read_frame(c, in, [](const ServerFrame& f) { return f.payload.find("later") != std::string::npos; }));
}

// rivet_conn_params whose escapes do not decode: refused like params that are
// not JSON (rivetkit's decodeURIComponent throws there), never silently null.
TEST(WsConnParams, AnUpgradeWhoseConnParamsHaveABadEscapeIsRefused400InvalidRequest) {
  auto dir = temp_dir("ws-params-escape");
  Gateway g(dir);
  RawClient c(g.port, 0);
  ASSERT_TRUE(c.send_all(upgrade_request("/gateway/" + g.id + "/connect", "rivet, rivet_encoding.json, rivet_conn_params.%7B%2")));
  std::string in;
  ASSERT_TRUE(c.read_until(in, "invalid_request", 3000ms)) << in;
  EXPECT_EQ(in.rfind("HTTP/1.1 400", 0), 0u) << in;
}

// --- WebSockets over TLS (HTTP/1.1 upgrade on an ALPN http/1.1 connection) ---

namespace {

// Reads from a TLS client until `buf` holds `marker` (or 5 s pass).
bool tls_read_until(TlsClient& c, std::string& buf, std::string_view marker) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (buf.find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    auto got = c.read(100ms);
    if (!got) return buf.find(marker) != std::string::npos;
    buf += *got;
  }
  return buf.find(marker) != std::string::npos;
}

}  // namespace

TEST(WebSocketOverTls, AConnectionGetsItsInitAndActionRepliesOverTls) {
  auto dir = temp_dir("ws-tls-connect");
  Gateway g(dir, {}, {}, /*tls=*/true);
  TlsClient c(g.port, {"http/1.1"});
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.write(upgrade_request("/gateway/" + g.id + "/connect", "rivet, rivet_encoding.json")));
  std::string buf;
  ASSERT_TRUE(tls_read_until(c, buf, "\r\n\r\n"));
  ASSERT_EQ(buf.rfind("HTTP/1.1 101", 0), 0u) << buf;
  buf.erase(0, buf.find("\r\n\r\n") + 4);
  ASSERT_TRUE(tls_read_until(c, buf, "Init"));
  take_frames(buf);
  ASSERT_TRUE(c.write(client_frame(action_request(7, "echo", R"(["over tls"])"))));
  ASSERT_TRUE(tls_read_until(c, buf, "over tls"));
  auto frames = take_frames(buf);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].payload.find("ActionResponse"), std::string::npos) << frames[0].payload;
  EXPECT_NE(frames[0].payload.find(R"("id":["$BigInt","7"])"), std::string::npos) << frames[0].payload;
}

TEST(WebSocketOverTls, ARawWebSocketCarriesLargeMessagesOverTls) {
  auto dir = temp_dir("ws-tls-raw");
  Gateway g(dir, {}, {}, /*tls=*/true);
  TlsClient c(g.port, {"http/1.1"});
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.write(upgrade_request("/gateway/" + g.id + "/websocket/", "rivet")));
  std::string buf;
  ASSERT_TRUE(tls_read_until(c, buf, "\r\n\r\n"));
  ASSERT_EQ(buf.rfind("HTTP/1.1 101", 0), 0u) << buf;
  buf.erase(0, buf.find("\r\n\r\n") + 4);
  ASSERT_TRUE(c.write(client_frame("flood 3")));
  // Beast may fragment a message: count the payload bytes of all frames.
  size_t bytes = 0;
  bool all_f = true;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (bytes < 3 * 64 * 1024 && std::chrono::steady_clock::now() < deadline) {
    auto more = c.read(100ms);
    if (!more) break;
    buf += *more;
    for (auto& f : take_frames(buf)) {
      bytes += f.payload.size();
      all_f = all_f && f.payload.find_first_not_of('f') == std::string::npos;
    }
  }
  EXPECT_EQ(bytes, 3u * 64 * 1024);
  EXPECT_TRUE(all_f);
}
