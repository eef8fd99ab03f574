// FakeHttpServer: an in-process HTTP/1.1 server for tests of code that calls
// external HTTP APIs (the outbound client; later the LLM, Gitea and OpenCode
// fakes). It listens on 127.0.0.1 on an ephemeral port, runs on its own
// thread(s), routes by method + path (query ignored; unknown routes answer
// 404), records every request it received, and fails on demand.
//
//   anvil::fakes::FakeHttpServer server;
//   server.route("GET", "/ok", FakeResponse::text(200, "hi"));
//   server.script("GET", "/flaky", {FakeResponse::text(503, ""), FakeResponse::text(200, "ok")});
//   server.route("GET", "/slow", FakeResponse::text(200, "late").after(std::chrono::milliseconds(100)));
//   server.route("GET", "/hang", FakeResponse::hang());
//   server.route("GET", "/cut", FakeResponse::reset_mid_body(std::string(1000, 'x'), 10));
//   server.route("GET", "/sse", FakeResponse::events({{10ms, "data: a\n\n"}, {10ms, "data: b\n\n"}}));
//   ... client calls server.url("/ok") ...
//   EXPECT_EQ(server.requests("GET", "/flaky").size(), 2u);
//
// Failure modes: `delay` before answering; any status (5xx, 429 with
// Retry-After via retry_after()); hang (headers never come; the connection
// stays open until the client closes it or the server stops); reset mid-body
// (headers + `reset_after_bytes` of the body, then close with SO_LINGER 0 so
// the client sees a RST); close without answering; SSE written over time as
// chunked text/event-stream; a script of responses per route (the nth request
// gets the nth response, the last one repeats).
//
// TLS: pass Options::tls (write_self_signed_cert makes a certificate for
// localhost and 127.0.0.1) and trust the certificate file in the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace anvil::fakes {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct RecordedRequest {
  uint64_t connection = 0;  // accept order, from 1: equal numbers = one keep-alive connection
  std::string method;
  std::string target;  // as sent, with the query
  std::string path;    // target without the query
  Headers headers;     // names lowercased
  std::string body;
  std::optional<std::string> header(std::string_view lower) const;
};

struct SseChunk {
  std::chrono::milliseconds delay{0};  // wait before writing this chunk
  std::string text;                    // raw event-stream text, e.g. "event: x\ndata: y\n\n"
};

// Called every few milliseconds while a live stream is open: appends what is
// to be written (may append nothing) and returns false to end the stream.
using LivePoll = std::function<bool(std::string& out)>;

struct FakeResponse {
  enum class Fault { none, hang, reset_mid_body, close };

  int status = 200;
  Headers headers;
  std::string body;
  std::chrono::milliseconds delay{0};  // before anything is written
  Fault fault = Fault::none;
  size_t reset_after_bytes = 0;  // reset_mid_body: body bytes written before the RST
  std::vector<SseChunk> sse;     // non-empty: 200 text/event-stream, chunked, one chunk each
  LivePoll live;                 // set: a chunked text/event-stream fed by this poll (see LivePoll)

  static FakeResponse text(int status, std::string body);
  static FakeResponse json(int status, std::string body);
  // `status` (429 or 503) with Retry-After: value ("1" or an HTTP date).
  static FakeResponse retry_after(int status, std::string value);
  static FakeResponse hang();
  // Content-Length: body.size(), then only the first sent_bytes, then RST.
  static FakeResponse reset_mid_body(std::string body, size_t sent_bytes);
  static FakeResponse close();
  static FakeResponse events(std::vector<SseChunk> chunks);
  // A text/event-stream written while `poll` produces text; an SSE comment
  // (":\n\n") every 500 ms of silence notices a client that went away.
  static FakeResponse live_events(LivePoll poll);

  FakeResponse after(std::chrono::milliseconds d) &&;
  FakeResponse with_header(std::string name, std::string value) &&;
};

using Handler = std::function<FakeResponse(const RecordedRequest&)>;

// Helpers the fakes share: the time as "2026-01-02T03:04:05Z", and a path's
// non-empty segments (percent-decoded with `decode`).
std::string utc_now_iso();
std::vector<std::string> path_segments(std::string_view path, bool decode);

struct TlsFiles {
  std::string cert_file;  // PEM; also the CA file a client must trust
  std::string key_file;   // PEM
};

// A fresh self-signed certificate (EC P-256, SAN DNS:localhost, IP:127.0.0.1,
// valid for a day) written as PEM into `dir`, which must exist.
TlsFiles write_self_signed_cert(const std::string& dir);

class FakeHttpServer {
 public:
  struct Options {
    int threads = 1;
    std::optional<TlsFiles> tls;
    bool record = true;  // false for load runs: keep no per-request memory
    uint16_t port = 0;   // 0: an ephemeral port (a fake restarted on its old port passes it)
  };

  FakeHttpServer();
  explicit FakeHttpServer(Options options);
  ~FakeHttpServer();  // stop()
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  uint16_t port() const;
  // "http://127.0.0.1:<port><path>" (https:// with TLS).
  std::string url(std::string_view path = "/") const;
  // Same on "localhost" (what a certificate names).
  std::string localhost_url(std::string_view path = "/") const;

  // Routes may be (re)defined at any time, also while requests run.
  void route(std::string method, std::string path, Handler handler);
  void route(std::string method, std::string path, FakeResponse response);
  void script(std::string method, std::string path, std::vector<FakeResponse> responses);
  // Answers every request no route matches (instead of 404).
  void fallback(Handler handler);

  std::vector<RecordedRequest> requests() const;
  std::vector<RecordedRequest> requests(std::string_view method, std::string_view path) const;
  void clear_requests();
  uint64_t connections() const;  // connections accepted so far

  // Closes the listener and every connection, then joins the threads. Idempotent.
  void stop();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace anvil::fakes
