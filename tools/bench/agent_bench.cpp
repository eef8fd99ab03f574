// anvil-agent-bench: GrowQR's growAgent under load against the Anthropic
// fake, side by side with the bare loop it replaces, in one run.
//
//   anvil-agent-bench [--users N] [--latency-ms D]
//
// The fake Messages API (tests/fakes/anthropic_fake.hpp) runs in a child
// process and streams every reply after D ms (default 200). Phases, each
// with N calls issued at once and timed from issue to answer:
//   bare   N concurrent streamed model calls through the outbound client,
//          assembled into a message (what one chat needs without an actor)
//   agent  N users' growAgent.chat(text) at once, one actor each (the
//          workflow loop: queue message, begin / check / model / record /
//          finish steps, every one durable before the reply)
// Anvil's own overhead is the agent phase's latency above the bare phase's
// (and above D). The actors are created and woken before the agent phase.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>


#include <spdlog/spdlog.h>

#include "actors/growqr/agent/anthropic.hpp"
#include "actors/growqr/agent/grow_agent.hpp"
#include "runtime/test_node.hpp"
#include "tests/fakes/anthropic_fake.hpp"
#include "tools/bench/phase.hpp"

using namespace anvil;
using bench::Clock;

namespace {

asio::awaitable<double> bare_call(net::HttpClient& client, growqr::LlmConfig cfg, bool* ok, std::string* err) {
  const auto t0 = Clock::now();
  Value messages = Array{obj({{"role", "user"}, {"content", "hello"}})};
  net::HttpRequest req = growqr::messages_request(cfg, "bench", growqr::agent_tool_specs(), messages);
  growqr::MessageAssembler assembler;
  std::function<void(const net::SseEvent&)> on_event = [&](const net::SseEvent& ev) { assembler.feed(ev); };
  auto res = co_await client.stream(std::move(req), std::move(on_event));
  auto msg = res.ok() ? assembler.finish() : Result<Value>(res.error());
  *ok = msg.ok();
  if (!msg.ok()) *err = msg.error().qualified() + ": " + msg.error().message;
  co_return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

asio::awaitable<double> chat(Runtime& rt, std::string id, bool* ok, std::string* err) {
  const auto t0 = Clock::now();
  std::string action = "chat";
  Array args{Value("hello agent")};
  Value no_params;
  CallResult r = co_await rt.call_action(id, std::move(action), std::move(args), std::move(no_params));
  *ok = r.output.ok();
  if (!r.output.ok()) *err = r.output.error().qualified() + ": " + r.output.error().message;
  co_return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t users = 1'000;
  int latency_ms = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    long v = std::atol(argv[i + 1]);
    if (k == "--users") users = size_t(v);
    else if (k == "--latency-ms") latency_ms = int(v);
    else {
      std::fprintf(stderr, "usage: anvil-agent-bench [--users N] [--latency-ms D]\n");
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  bench::ChildServer server = bench::fork_server([latency_ms] {
    fakes::AnthropicFake::Options fo;
    fo.threads = 2;
    fo.record = false;
    static fakes::AnthropicFake llm(fo);
    llm.latency(std::chrono::milliseconds(latency_ms));
    return llm.server().port();
  });
  if (server.port == 0) return 1;
  const uint16_t port = server.port;
  const std::string base = "http://127.0.0.1:" + std::to_string(port);

  Registry registry;
  registry.add(growqr::grow_agent());
  const std::string dir = testing::temp_dir("agent-bench");
  std::vector<std::string> out;
  {
    testing::Node node(dir, registry);
    node.enable_http();
    Services s = node.rt().services();
    s.config = std::make_shared<const ConfigMap>(
        ConfigMap{{"ANTHROPIC_BASE_URL", base}, {"ANTHROPIC_API_KEY", "bench"}, {"GROWQR_AGENT_MODEL", "bench"}});
    node.rt().set_services(s);
    growqr::LlmConfig cfg{base, "bench", "bench", 1024, std::chrono::milliseconds(60'000)};
    net::HttpClient bare_client(node.io());
    out.push_back(bench::json(bench::run_phase("bare", node.io(), users, [&](size_t, bool* ok, std::string* err) {
      return bare_call(bare_client, cfg, ok, err);
    })));
    std::vector<std::string> ids;
    for (size_t i = 0; i < users; ++i) ids.push_back(node.get_or_create("growAgent", {"bench-user-" + std::to_string(i)}));
    for (auto& id : ids) (void)node.call(id, "getHistory");
    out.push_back(bench::json(bench::run_phase("agent", node.io(), users, [&](size_t i, bool* ok, std::string* err) {
      return chat(node.rt(), ids[i], ok, err);
    })));
  }
  std::filesystem::remove_all(dir);
  server.stop();
  std::printf("{\"users\":%zu,\"latency_ms\":%d,\"phases\":[", users, latency_ms);
  for (size_t i = 0; i < out.size(); ++i) std::printf("%s%s", i ? "," : "", out[i].c_str());
  std::printf("]}\n");
  return 0;
}
