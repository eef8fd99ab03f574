// Actions, onRequest and workflow steps that await I/O: interleaving, the
// durability of every reply, time limits while waiting, cancellation on
// destroy, and stable idempotency keys across a crash mid-call. Real RocksDB,
// the real outbound client, a local fake HTTP server.
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "actors/fixtures/fixtures.hpp"
#include "runtime/test_node.hpp"
#include "tests/fakes/fake_http.hpp"

using namespace anvil;
using anvil::fakes::FakeHttpServer;
using anvil::fakes::FakeResponse;
using anvil::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

// Test actors written against the public authoring API.
ActorDefinition waiter_actor() {
  ActorDefinition def("waiter");
  ActorOptions o;
  o.action_timeout = 300ms;
  o.sleep_timeout = 200ms;
  def.options(o)
      .initial_state(obj({{"phase", "idle"}, {"log", Array{}}}))
      // Marks the state, waits `ms`, marks it again.
      .async_action("slow",
                    [](ActionContext& c, Array args) -> Task<Result<Value>> {
                      int64_t ms = args.empty() ? 100 : args[0].as_int();
                      c.mutate_state()["phase"] = "waiting";
                      auto st = co_await c.sleep_for(std::chrono::milliseconds(ms));
                      if (!st.ok()) co_return st.error();
                      c.mutate_state()["phase"] = "done";
                      co_return Value("slept");
                    })
      // Awaits a URL that never answers (the action limit cuts it).
      .async_action("hang",
                    [](ActionContext& c, Array args) -> Task<Result<Value>> {
                      net::HttpRequest req;
                      req.url = args[0].as_string();
                      req.total_timeout = 10s;
                      auto r = co_await c.http(std::move(req));
                      if (!r.ok()) co_return r.error();
                      co_return Value(r->body);
                    })
      // Two waits; appends to the log around each.
      .async_action("twice",
                    [](ActionContext& c, Array args) -> Task<Result<Value>> {
                      const std::string tag = args[0].as_string();
                      c.mutate_state()["log"].as_array().push_back(tag + ":a");
                      // Pauses only: the log shows what ran, whatever a pause ended with.
                      (void)co_await c.sleep_for(20ms);
                      c.mutate_state()["log"].as_array().push_back(tag + ":b");
                      (void)co_await c.sleep_for(20ms);
                      c.mutate_state()["log"].as_array().push_back(tag + ":c");
                      co_return Value(tag);
                    })
      .async_action("sleepAfterWait",
                    [](ActionContext& c, Array) -> Task<Result<Value>> {
                      c.sleep();  // a requested sleep waits for the call
                      // A pause only: the test checks the phase the call reached.
                      (void)co_await c.sleep_for(100ms);
                      c.mutate_state()["phase"] = "after";
                      co_return Value(true);
                    })
      .async_action("noWait",
                    [](ActionContext& c, Array) -> Task<Result<Value>> {
                      c.mutate_state()["phase"] = "instant";
                      co_return Value(1);
                    })
      // Logs a line before and after a wait (the test reads their context).
      .async_action("logAround",
                    [](ActionContext& c, Array) -> Task<Result<Value>> {
                      spdlog::info("logAround before the wait");
                      (void)co_await c.sleep_for(10ms);
                      spdlog::info("logAround after the wait");
                      co_return Value(true);
                    })
      .on_request_async([](ActorContext& c, RawRequest req) -> Task<Result<RawResponse>> {
        if (req.path == "/fetch") {  // body: a URL to GET; answers its body
          net::HttpRequest out;
          out.url = req.body;
          auto r = co_await c.http(std::move(out));
          if (!r.ok()) co_return r.error();
          RawResponse res;
          res.body = r->body;
          co_return res;
        }
        (void)co_await c.sleep_for(10ms);  // a pause only: the test checks the answer
        RawResponse res;
        res.body = "async " + req.path;
        co_return res;
      })
      .action("scheduleSlow",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                auto id = c.schedule_after(0, "slow", {args[0]});
                if (!id.ok()) return id.error();
                return Value(*id);
              })
      // Awaits another actor's action (and, with "self", this actor's own).
      .async_action("callCounter",
                    [](ActionContext& c, Array args) -> Task<Result<Value>> {
                      std::string name = "counter";
                      std::string action = "increment";
                      ActorKey key{args[0].as_string()};
                      Array call_args{args[1]};
                      auto r = co_await c.call(std::move(name), std::move(key), std::move(action),
                                               std::move(call_args));
                      if (!r.ok()) co_return r.error();
                      c.mutate_state()["phase"] = "called";
                      co_return *r;
                    })
      .async_action("callSelf",
                    [](ActionContext& c, Array) -> Task<Result<Value>> {
                      std::string name = "waiter";
                      std::string action = "phase";
                      ActorKey key = c.key();
                      auto r = co_await c.call(std::move(name), std::move(key), std::move(action), Array{});
                      if (!r.ok()) co_return r.error();
                      co_return *r;
                    })
      .async_action("callMissing",
                    [](ActionContext& c, Array) -> Task<Result<Value>> {
                      std::string name = "counter";
                      std::string action = "noSuchAction";
                      ActorKey key{std::string("m")};
                      co_return co_await c.call(std::move(name), std::move(key), std::move(action), Array{});
                    })
      // A scheduled action's connection is its own: state written to it is
      // never seen by another scheduled call (of this or any actor).
      .action("connScratch",
              [](ActionContext& c, const Array&) -> Result<Value> {
                Value before = c.conn().state();
                c.conn().mutate_state() = "dirty";
                Value& seen = c.mutate_state()["connSeen"];
                if (!seen.is_array()) seen = Array{};
                seen.as_array().push_back(before.is_null() || before.is_undefined() ? Value("clean") : before);
                return Value(true);
              })
      .action("scheduleScratch",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                for (int64_t i = 0; i < args[0].as_int(); ++i) {
                  auto id = c.schedule_after(0, "connScratch", {});
                  if (!id.ok()) return id.error();
                }
                return Value(true);
              })
      .action("connSeen",
              [](ActionContext& c, const Array&) -> Result<Value> {
                const Value* v = c.state().find("connSeen");
                return v ? *v : Value(Array{});
              })
      .action("phase", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("phase"); })
      .action("log", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("log"); })
      .action("destroy", actors::destroy_action);
  return def;
}

const Registry& registry() {
  static const Registry reg = [] {
    Registry r;
    actors::register_fixtures(r);
    r.add(waiter_actor());
    return r;
  }();
  return reg;
}

class Node : public anvil::testing::Node {
 public:
  // The client is there before load(): a workflow resuming on load calls out at once.
  explicit Node(const std::string& dir) : anvil::testing::Node(dir, registry(), nullptr, net::ClientOptions{}) {}

  // Runs `n` calls of `action` concurrently (each its own coroutine).
  std::vector<Result<Value>> call_many(const std::vector<std::string>& ids, const std::string& action,
                                       const std::function<Array(size_t)>& args) {
    std::vector<std::future<CallResult>> futures;
    for (size_t i = 0; i < ids.size(); ++i)
      futures.push_back(asio::co_spawn(io(), rt().call_action(ids[i], action, args(i), Value()), asio::use_future));
    std::vector<Result<Value>> out;
    for (auto& f : futures) out.push_back(f.get().output);
    return out;
  }
};

// Every line logged while it is installed, with the thread's log context.
class CapturedLines : public spdlog::sinks::base_sink<std::mutex> {
 public:
  struct Line {
    std::string msg, actor_id, actor_name, ray_id, trace_id;
  };
  std::vector<Line> lines() {
    std::lock_guard lk(mutex_);
    return lines_;
  }
  std::optional<Line> find(const std::string& msg) {
    for (auto& l : lines())
      if (l.msg == msg) return l;
    return std::nullopt;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& m) override {
    const log::Context& c = log::current();
    lines_.push_back(Line{std::string(m.payload.data(), m.payload.size()), std::string(c.actor_id),
                          std::string(c.actor_name), std::string(c.ray_id), std::string(c.trace_id)});
  }
  void flush_() override {}

 private:
  std::vector<Line> lines_;
};

// Installs a CapturedLines on the default logger for its lifetime (the
// sink list is not thread-safe: no other thread may log meanwhile).
struct Capture {
  Capture() : sink(std::make_shared<CapturedLines>()) { spdlog::default_logger()->sinks().push_back(sink); }
  ~Capture() { std::erase(spdlog::default_logger()->sinks(), sink); }
  std::shared_ptr<CapturedLines> sink;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST(AsyncActions, FetchTextReturnsTheBodyFromTheOutboundClient) {
  FakeHttpServer server;
  server.route("GET", "/hello", FakeResponse::text(200, "hello there"));
  auto dir = temp_dir("async-fetch");
  Node n(dir);
  auto id = n.get_or_create("outbound", {"a"});
  auto r = n.call(id, "fetchText", {server.url("/hello")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->as_string(), "hello there");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, AnOutboundCallContinuesTheCallersTraceWithANewSpan) {
  FakeHttpServer server;
  server.route("GET", "/hello", FakeResponse::text(200, "hello there"));
  auto dir = temp_dir("async-trace");
  Node n(dir);
  auto id = n.get_or_create("outbound", {"a"});
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto r = n.run(n.rt().call_action(id, "fetchText", {server.url("/hello")}, Value(), tp));
  ASSERT_TRUE(r.output.ok()) << r.output.error().message;
  auto sent = server.requests("GET", "/hello");
  ASSERT_EQ(sent.size(), 1u);
  auto header = sent[0].header("traceparent");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-") << *header;
  EXPECT_NE(header->substr(36, 16), "00f067aa0ba902b7") << "a span of its own";
  EXPECT_EQ(header->substr(52), "-01");

  // No trace (or a malformed one) from the caller: none is invented.
  server.clear_requests();
  std::string bad = "00-zz";
  ASSERT_TRUE(n.run(n.rt().call_action(id, "fetchText", {server.url("/hello")}, Value(), bad)).output.ok());
  ASSERT_TRUE(n.call(id, "fetchText", {server.url("/hello")}).ok());
  for (const auto& req : server.requests("GET", "/hello")) EXPECT_FALSE(req.header("traceparent"));
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, LinesLoggedAfterAWaitStillNameTheActorTheRequestAndTheTrace) {
  auto dir = temp_dir("async-log");
  Capture cap;  // before the node's threads exist, removed after they end
  Node n(dir);
  auto id = n.get_or_create("waiter", {"log"});
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  std::string ray = "ray-async-1";
  ASSERT_TRUE(n.run(n.rt().call_action(id, "logAround", {}, Value(), tp, ray)).output.ok());
  for (const char* msg : {"logAround before the wait", "logAround after the wait"}) {
    auto line = cap.sink->find(msg);
    ASSERT_TRUE(line) << msg;
    EXPECT_EQ(line->actor_id, id) << msg;
    EXPECT_EQ(line->actor_name, "waiter") << msg;
    EXPECT_EQ(line->ray_id, "ray-async-1") << msg;
    EXPECT_EQ(line->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736") << msg;
  }
  // The context left with the call: the node's threads log plainly again.
  asio::post(n.io(), [] { spdlog::info("after the call, on an io thread"); });
  for (int i = 0; i < 200 && !cap.sink->find("after the call, on an io thread"); ++i) std::this_thread::sleep_for(5ms);
  auto plain = cap.sink->find("after the call, on an io thread");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->actor_id, "");
  EXPECT_EQ(plain->ray_id, "");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, ARawRequestsTraceContinuesInItsOutboundCalls) {
  FakeHttpServer server;
  server.route("GET", "/hello", FakeResponse::text(200, "hello there"));
  auto dir = temp_dir("async-request-trace");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"rt"});
  RawRequest req;
  req.method = "POST";
  req.path = "/fetch";
  req.body = server.url("/hello");
  req.headers.emplace_back("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto res = n.run(n.rt().raw_request(id, req));
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->body, "hello there");
  auto sent = server.requests("GET", "/hello");
  ASSERT_EQ(sent.size(), 1u);
  auto header = sent[0].header("traceparent");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-") << *header;
  EXPECT_NE(header->substr(36, 16), "00f067aa0ba902b7");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, OutboundErrorsReachTheCallerAsOutboundCodes) {
  FakeHttpServer server;
  server.route("GET", "/missing", FakeResponse::text(404, "nope"));
  server.route("GET", "/hang", FakeResponse::hang());
  auto dir = temp_dir("async-errors");
  Node n(dir);
  auto id = n.get_or_create("outbound", {"a"});

  auto status = n.call(id, "fetchText", {server.url("/missing")});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().qualified(), "outbound.http_status");
  ASSERT_TRUE(status.error().metadata && status.error().metadata->find("status"));
  EXPECT_EQ(status.error().metadata->find("status")->as_int(), 404);

  auto timeout = n.call(id, "fetchText", {server.url("/hang"), obj({{"timeoutMs", 200}, {"retries", 0}})});
  ASSERT_FALSE(timeout.ok());
  EXPECT_EQ(timeout.error().qualified(), "outbound.timeout");

  // A port where nothing listens: bind one, then close it.
  uint16_t dead_port;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    dead_port = a.local_endpoint().port();
  }
  auto refused = n.call(id, "fetchText",
                        {"http://127.0.0.1:" + std::to_string(dead_port) + "/", obj({{"retries", 0}})});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().qualified(), "outbound.connect_failed");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, TwoHundredWaitingCallsOnOneActorInterleave) {
  FakeHttpServer::Options fo;
  fo.threads = 2;
  FakeHttpServer server(fo);
  server.route("GET", "/slow", FakeResponse::text(200, "late").after(500ms));
  auto dir = temp_dir("async-one");
  Node n(dir);
  auto id = n.get_or_create("outbound", {"one"});
  const auto t0 = std::chrono::steady_clock::now();
  auto results = n.call_many(std::vector<std::string>(200, id), "fetchText",
                             [&](size_t) { return Array{server.url("/slow")}; });
  const double took = seconds_since(t0);
  for (auto& r : results) ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_LT(took, 2.0) << "200 interleaved 500 ms calls took " << took << " s";
  auto stats = n.call(id, "getStats");
  EXPECT_EQ(stats->find("started")->as_int(), 200);
  EXPECT_EQ(stats->find("finished")->as_int(), 200);
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, TwoHundredWaitingCallsOnTwoHundredActorsRunTogether) {
  FakeHttpServer::Options fo;
  fo.threads = 2;
  FakeHttpServer server(fo);
  server.route("GET", "/slow", FakeResponse::text(200, "late").after(500ms));
  auto dir = temp_dir("async-many");
  Node n(dir);
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(n.get_or_create("outbound", {"a" + std::to_string(i)}));
  const auto t0 = std::chrono::steady_clock::now();
  auto results = n.call_many(ids, "fetchText", [&](size_t) { return Array{server.url("/slow")}; });
  const double took = seconds_since(t0);
  for (auto& r : results) ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_LT(took, 2.0) << "200 concurrent 500 ms calls took " << took << " s";
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, OtherActorsKeepTheirLatencyWhileCallsWait) {
  FakeHttpServer server;
  server.route("GET", "/slow", FakeResponse::text(200, "late").after(800ms));
  auto dir = temp_dir("async-latency");
  Node n(dir);
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(n.get_or_create("outbound", {"w" + std::to_string(i)}));
  auto counter = n.get_or_create("counter", {"c"});
  std::thread waiting([&] { n.call_many(ids, "fetchText", [&](size_t) { return Array{server.url("/slow")}; }); });
  std::this_thread::sleep_for(100ms);  // the calls are now waiting
  double worst = 0;
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(n.call(counter, "increment", {1}).ok());
    worst = std::max(worst, seconds_since(t0));
  }
  waiting.join();
  // Each increment waits for an fsync; nothing waits for the 800 ms calls.
  EXPECT_LT(worst, 0.5) << "an increment took " << worst << " s while calls waited";
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, AStateChangeBeforeAWaitIsVisibleToOtherActionsAtOnce) {
  auto dir = temp_dir("async-visible");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"v"});
  auto slow = asio::co_spawn(n.io(), n.rt().call_action(id, "slow", {200}, Value()), asio::use_future);
  std::this_thread::sleep_for(80ms);
  EXPECT_EQ(n.call(id, "phase")->as_string(), "waiting");
  auto r = slow.get().output;
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->as_string(), "slept");
  EXPECT_EQ(n.call(id, "phase")->as_string(), "done");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, EveryWriteOfAnAcknowledgedCallSurvivesARestart) {
  auto dir = temp_dir("async-durable");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("waiter", {"d"});
    auto r = n.call(id, "twice", {"x"});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }  // stops like a killed process: nothing flushed on the way out
  Node n(dir);
  auto log = n.call(id, "log");
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->as_array().size(), 3u);
  EXPECT_EQ(log->as_array()[2].as_string(), "x:c");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, CallsInterleaveOnlyAtWaits) {
  auto dir = temp_dir("async-interleave");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"i"});
  std::vector<std::string> ids(2, id);
  auto results = n.call_many(ids, "twice", [](size_t i) { return Array{i == 0 ? "p" : "q"}; });
  for (auto& r : results) ASSERT_TRUE(r.ok());
  auto log = n.call(id, "log")->as_array();
  ASSERT_EQ(log.size(), 6u);
  // Each call's segments keep their order; the calls interleave between them.
  for (const char* tag : {"p", "q"}) {
    std::vector<std::string> mine;
    for (auto& v : log)
      if (v.as_string()[0] == tag[0]) mine.push_back(v.as_string());
    EXPECT_EQ(mine, (std::vector<std::string>{std::string(tag) + ":a", std::string(tag) + ":b",
                                              std::string(tag) + ":c"}));
  }
  EXPECT_NE(log[0].as_string()[0], log[1].as_string()[0]) << "the second call ran while the first waited";
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, AWaitPastTheActionLimitIsCancelledWithActionTimedOut) {
  FakeHttpServer server;
  server.route("GET", "/hang", FakeResponse::hang());
  auto dir = temp_dir("async-timeout");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"t"});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = n.call(id, "hang", {server.url("/hang")});
  const double took = seconds_since(t0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.action_timed_out");
  EXPECT_LT(took, 1.5) << "the 300 ms limit cut the 10 s wait";
  EXPECT_GE(took, 0.25);
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, DestroyingAnActorCancelsItsWaitsCleanly) {
  auto dir = temp_dir("async-destroy");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"x"});
  auto slow = asio::co_spawn(n.io(), n.rt().call_action(id, "slow", {250}, Value()), asio::use_future);
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(n.call(id, "destroy").ok());
  auto r = slow.get().output;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.aborted");
  EXPECT_FALSE(n.rt().exists(id));
  std::this_thread::sleep_for(300ms);  // the sleep's timer fired into nothing
  EXPECT_FALSE(n.rt().exists(id)) << "a write after destroy must not resurrect the actor";
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, ARequestedSleepWaitsForTheCallInFlight) {
  auto dir = temp_dir("async-sleep");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"s"});
  auto r = n.call(id, "sleepAfterWait");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(n.call(id, "phase")->as_string(), "after");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, AnAsyncActionThatNeverWaitsAnswersLikeASyncOne) {
  auto dir = temp_dir("async-nowait");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"n"});
  auto r = n.call(id, "noWait");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->as_int(), 1);
  EXPECT_EQ(n.call(id, "phase")->as_string(), "instant");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, AScheduledAsyncActionRunsAndCommits) {
  auto dir = temp_dir("async-schedule");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("waiter", {"sch"});
    ASSERT_TRUE(n.call(id, "scheduleSlow", {30}).ok());
    auto phase = n.wait_for(id, "phase", [](const Value& v) { return v.as_string() == "done"; });
    EXPECT_EQ(phase.as_string(), "done");
  }
  Node n(dir);
  EXPECT_EQ(n.call(id, "phase")->as_string(), "done");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, AnActionAwaitsAnotherActorsDurableResult) {
  auto dir = temp_dir("async-call");
  std::string counter;
  {
    Node n(dir);
    auto id = n.get_or_create("waiter", {"caller"});
    auto r = n.call(id, "callCounter", {"target", 7});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->as_int(), 7);
    EXPECT_EQ(n.call(id, "phase")->as_string(), "called");
    auto again = n.call(id, "callCounter", {"target", 3});
    EXPECT_EQ(again->as_int(), 10);
    counter = n.get_or_create("counter", {"target"});
  }
  Node n(dir);
  EXPECT_EQ(n.call(counter, "getCount")->as_int(), 10) << "the callee's writes were durable before the reply";
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, AnActionMayAwaitItsOwnActorWithoutDeadlock) {
  auto dir = temp_dir("async-self");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"self"});
  auto r = n.call(id, "callSelf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->as_string(), "idle");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, AnAwaitedCallReturnsTheCalleesError) {
  auto dir = temp_dir("async-call-error");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"err"});
  auto r = n.call(id, "callMissing");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.action_not_found");
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, ScheduledActionsNeverShareAConnection) {
  auto dir = temp_dir("sched-conn");
  Node n(dir);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(n.get_or_create("waiter", {"sc" + std::to_string(i)}));
  for (auto& id : ids) ASSERT_TRUE(n.call(id, "scheduleScratch", {25}).ok());
  for (auto& id : ids) {
    auto seen = n.wait_for(id, "connSeen", [](const Value& v) { return v.as_array().size() == 25; });
    ASSERT_EQ(seen.as_array().size(), 25u);
    for (auto& v : seen.as_array()) EXPECT_EQ(v.as_string(), "clean") << "a scheduled call saw another's connection state";
  }
  std::filesystem::remove_all(dir);
}

TEST(AsyncActions, AsyncOnRequestAnswersAfterItsWait) {
  auto dir = temp_dir("async-request");
  Node n(dir);
  auto id = n.get_or_create("waiter", {"r"});
  RawRequest req;
  req.method = "GET";
  req.path = "/ping";
  auto res = n.run(n.rt().raw_request(id, req));
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->body, "async /ping");
  std::filesystem::remove_all(dir);
}

TEST(AsyncSteps, AnAwaitingStepRecordsItsResultOnceWithAStableIdempotencyKey) {
  FakeHttpServer server;
  server.route("POST", "/charge", FakeResponse::text(200, "charged"));
  auto dir = temp_dir("async-step");
  Node n(dir);
  auto id = n.get_or_create("outboundFlow", {"f"});
  n.send(id, "calls", obj({{"url", server.url("/charge")}, {"body", "one"}}));
  auto results = n.wait_for(id, "getResults", [](const Value& v) { return v.as_array().size() == 1; });
  ASSERT_EQ(results.as_array().size(), 1u);
  const Value& first = results.as_array()[0];
  ASSERT_TRUE(first.find("body")) << "step failed";
  EXPECT_EQ(first.find("body")->as_string(), "charged");
  auto reqs = server.requests("POST", "/charge");
  ASSERT_EQ(reqs.size(), 1u);
  auto key = reqs[0].header("idempotency-key");
  ASSERT_TRUE(key);
  EXPECT_EQ(*key, first.find("key")->as_string());
  EXPECT_EQ(key->rfind("wf-", 0), 0u);
  std::filesystem::remove_all(dir);
}

TEST(AsyncSteps, ACrashMidCallReRunsTheStepWithTheSameIdempotencyKey) {
  FakeHttpServer server;
  server.route("POST", "/charge", FakeResponse::hang());
  auto dir = temp_dir("async-step-crash");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("outboundFlow", {"crash"});
    n.send(id, "calls", obj({{"url", server.url("/charge")}, {"body", "one"}}));
    for (int i = 0; i < 200 && server.requests("POST", "/charge").empty(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(server.requests("POST", "/charge").size(), 1u);
  }  // killed mid-call
  server.route("POST", "/charge", FakeResponse::text(200, "charged"));
  Node n(dir);  // the workflow resumes on load
  auto results = n.wait_for(id, "getResults", [](const Value& v) { return v.as_array().size() == 1; });
  ASSERT_EQ(results.as_array().size(), 1u) << "the step's result is recorded once";
  auto reqs = server.requests("POST", "/charge");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].header("idempotency-key"), reqs[1].header("idempotency-key"));
  EXPECT_EQ(reqs[1].body, "one");
  std::filesystem::remove_all(dir);
}

TEST(AsyncSteps, StepsOfDifferentActorsGetDifferentKeys) {
  FakeHttpServer server;
  server.route("POST", "/charge", FakeResponse::text(200, "ok"));
  auto dir = temp_dir("async-step-keys");
  Node n(dir);
  auto a = n.get_or_create("outboundFlow", {"a"});
  auto b = n.get_or_create("outboundFlow", {"b"});
  n.send(a, "calls", obj({{"url", server.url("/charge")}}));
  n.send(b, "calls", obj({{"url", server.url("/charge")}}));
  n.wait_for(a, "getResults", [](const Value& v) { return v.as_array().size() == 1; });
  n.wait_for(b, "getResults", [](const Value& v) { return v.as_array().size() == 1; });
  auto reqs = server.requests("POST", "/charge");
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(reqs[0].header("idempotency-key"), reqs[1].header("idempotency-key"));
  std::filesystem::remove_all(dir);
}
