// anvil-outbound-bench: awaiting actions under load, side by side with the
// bare loop they replace, in one run and one process.
//
//   anvil-outbound-bench [--calls N] [--delay-ms D] [--actors A] [--threads T]
//
// A local HTTP server (tests/fakes, own thread) answers GET /slow after D ms.
// Phases, each with N calls issued at once and timed from issue to answer:
//   bare       N concurrent requests through the outbound client, no actor
//   actors     N concurrent `outbound.fetchText` actions spread over A actors
//              (durable: each call's state changes commit before its reply)
//   one_actor  N concurrent `fetchText` on one actor (interleaved at the wait)
// The actor phases run the runtime in process (real RocksDB, group commit,
// strands, the outbound client) without the gateway, so the difference to
// `bare` is what the actor runtime adds to an awaited call. Prints JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <vector>


#include <spdlog/spdlog.h>

#include "actors/fixtures/fixtures.hpp"
#include "runtime/test_node.hpp"
#include "tests/fakes/fake_http.hpp"
#include "tools/bench/phase.hpp"

using namespace anvil;
using bench::Clock;

namespace {

asio::awaitable<double> timed_get(net::HttpClient& client, std::string url, bool* ok, std::string* err) {
  const auto t0 = Clock::now();
  net::HttpRequest req;
  req.url = std::move(url);
  auto r = co_await client.request(std::move(req));
  *ok = r.ok();
  if (!r.ok()) *err = r.error().qualified() + ": " + r.error().message;
  co_return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

asio::awaitable<double> timed_action(Runtime& rt, std::string id, std::string url, bool* ok, std::string* err) {
  const auto t0 = Clock::now();
  std::string action = "fetchText";  // GCC 12: no string literal as a by-value coroutine argument
  Array args{Value(std::move(url))};
  CallResult r = co_await rt.call_action(id, std::move(action), std::move(args), Value());
  *ok = r.output.ok();
  if (!r.output.ok()) *err = r.output.error().qualified() + ": " + r.output.error().message;
  co_return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t calls = 10'000, actors = 1'000;
  int delay_ms = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    long v = std::atol(argv[i + 1]);
    if (k == "--calls") calls = size_t(v);
    else if (k == "--delay-ms") delay_ms = int(v);
    else if (k == "--actors") actors = size_t(v);
    else {
      std::fprintf(stderr, "usage: anvil-outbound-bench [--calls N] [--delay-ms D] [--actors A]\n");
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  bench::ChildServer server = bench::fork_server([delay_ms] {
    fakes::FakeHttpServer::Options fo;
    fo.threads = 2;
    fo.record = false;
    static fakes::FakeHttpServer http(fo);
    http.route("GET", "/slow", fakes::FakeResponse::text(200, "late").after(std::chrono::milliseconds(delay_ms)));
    return http.port();
  });
  if (server.port == 0) return 1;
  const uint16_t port = server.port;
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/slow";

  Registry registry;
  actors::register_fixtures(registry);
  const std::string dir = testing::temp_dir("outbound-bench");
  std::vector<std::string> out;
  {
    testing::Node node(dir, registry);
    node.enable_http();
    net::HttpClient bare_client(node.io());
    out.push_back(bench::json(bench::run_phase("bare", node.io(), calls, [&](size_t, bool* ok, std::string* err) {
      return timed_get(bare_client, url, ok, err);
    })));

    std::vector<std::string> ids;
    for (size_t i = 0; i < actors; ++i) ids.push_back(node.get_or_create("outbound", {"b" + std::to_string(i)}));
    // Wake every actor once so the phase measures awake actors.
    for (auto& id : ids) (void)node.call(id, "getStats");
    out.push_back(bench::json(bench::run_phase("actors", node.io(), calls, [&](size_t i, bool* ok, std::string* err) {
      return timed_action(node.rt(), ids[i % ids.size()], url, ok, err);
    })));
    out.push_back(bench::json(bench::run_phase("one_actor", node.io(), calls, [&](size_t, bool* ok, std::string* err) {
      return timed_action(node.rt(), ids[0], url, ok, err);
    })));
  }
  std::filesystem::remove_all(dir);
  server.stop();
  std::printf("{\"calls\":%zu,\"delay_ms\":%d,\"actors\":%zu,\"phases\":[", calls, delay_ms, actors);
  for (size_t i = 0; i < out.size(); ++i) std::printf("%s%s", i ? "," : "", out[i].c_str());
  std::printf("]}\n");
  return 0;
}
