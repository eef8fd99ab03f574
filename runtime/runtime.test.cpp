// Runtime integration tests on a real RocksDB: identity, the getOrCreate
// race, durability across restarts, sleep/wake and destroy.
#include "runtime/runtime.hpp"

#include <filesystem>
#include <future>
#include <algorithm>
#include <set>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;

namespace {

using anvil::testing::temp_dir;

// The fixture actors unless a test brings its own registry.
class Node : public anvil::testing::Node {
 public:
  explicit Node(const std::string& dir, const Registry* registry = nullptr)
      : anvil::testing::Node(dir, registry ? *registry : actors::fixture_registry()) {}
};

}  // namespace

TEST(Runtime, GetOrCreateReturnsTheSameActorForTheSameKey) {
  auto dir = temp_dir("same");
  Node n(dir);
  auto a = n.get_or_create("counter", {"k"});
  auto b = n.get_or_create("counter", {"k"});
  auto c = n.get_or_create("counter", {"k", "other"});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, SameKeyUnderDifferentNamesIsDifferentActors) {
  auto dir = temp_dir("names");
  Node n(dir);
  EXPECT_NE(n.get_or_create("counter", {"k"}), n.get_or_create("lifecycle", {"k"}));
  std::filesystem::remove_all(dir);
}

TEST(Runtime, CreateOnAUsedKeyIsDuplicateKeyNamingTheExistingActor) {
  auto dir = temp_dir("dup");
  Node n(dir);
  auto id = n.get_or_create("counter", {"d"});
  CreateRequest cr;
  cr.name = "counter";
  cr.key = {"d"};
  auto r = n.rt().create(cr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.duplicate_key");
  ASSERT_TRUE(r.error().metadata.has_value());
  EXPECT_EQ(r.error().metadata->find("existing_actor_id")->as_string(), id);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, UnknownActorNameIsRejectedUpFront) {
  auto dir = temp_dir("unknown");
  Node n(dir);
  CreateRequest cr;
  cr.name = "nope";
  auto r = n.rt().get_or_create(cr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.not_registered");
  std::filesystem::remove_all(dir);
}

TEST(Runtime, ConcurrentGetOrCreateAndIncrementOnANewKeyMakesOneActorAndLosesNothing) {
  auto dir = temp_dir("race");
  Node n(dir);
  constexpr int kCalls = 200;
  std::vector<std::future<std::pair<std::string, int64_t>>> fs;
  for (int i = 0; i < kCalls; ++i)
    fs.push_back(std::async(std::launch::async, [&] {
      auto id = n.get_or_create("counter", {"burst"});
      auto r = n.call(id, "increment", {Value(1)});
      return std::make_pair(id, r.ok() ? r->as_int() : -1);
    }));
  std::set<std::string> ids;
  std::set<int64_t> counts;
  for (auto& f : fs) {
    auto [id, c] = f.get();
    ids.insert(id);
    counts.insert(c);
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(counts.size(), size_t(kCalls));  // every increment saw a distinct count
  EXPECT_EQ(*counts.begin(), 1);
  EXPECT_EQ(n.call(*ids.begin(), "getCount")->as_int(), kCalls);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, AcknowledgedStateSurvivesAProcessRestart) {
  auto dir = temp_dir("restart");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("counter", {"persist"});
    ASSERT_EQ(n.call(id, "increment", {Value(3)})->as_int(), 3);
  }  // no graceful shutdown: the node is simply torn down
  Node n(dir);
  EXPECT_EQ(n.get_or_create("counter", {"persist"}), id);
  EXPECT_EQ(n.call(id, "getCount")->as_int(), 3);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, AfterShutdownBeginsNoCallWakesAnActorAgainAndStateIsPersisted) {
  auto dir = temp_dir("shutdown-gate");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("counter", {"gate"});
    ASSERT_EQ(n.call(id, "increment", {Value(4)})->as_int(), 4);
    n.run(n.rt().shutdown());
    auto after = n.call(id, "increment", {Value(1)});
    ASSERT_FALSE(after.ok());
    EXPECT_EQ(after.error().qualified(), "actor.stopping");
    auto listed = n.run(n.rt().once_durable(n.rt().list_by_ids({id})));
    ASSERT_TRUE(listed.ok());
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_TRUE((*listed)[0].sleep_ts.has_value()) << "the refused call woke the actor";
  }
  Node n(dir);
  EXPECT_EQ(n.call(id, "getCount")->as_int(), 4);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, ShutdownAbortsAnAwaitingCallInsteadOfWaitingForIt) {
  auto dir = temp_dir("shutdown-async");
  Node n(dir);
  const std::string id = n.get_or_create("outbound", {"slow"});
  auto pending = asio::co_spawn(n.io(), n.rt().call_action(id, "sleepThen", {Value(60'000), Value("late")}, Value()),
                                asio::use_future);
  n.wait_for(id, "getStats", [](const Value& s) { return s.find("started") && s.find("started")->as_int() == 1; });
  const auto t0 = std::chrono::steady_clock::now();
  n.run(n.rt().shutdown());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto r = pending.get().output;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.aborted");
  std::filesystem::remove_all(dir);
}

TEST(Runtime, StateIsRestoredAfterSleepAndHooksRunInOrder) {
  auto dir = temp_dir("sleep");
  Node n(dir);
  auto id = n.get_or_create("lifecycle", {"lc"}, obj({{"hello", "world"}}));
  EXPECT_EQ(*n.call(id, "getEvents"), arr({"create", "wake"}));
  EXPECT_EQ(*n.call(id, "goToSleep"), Value(true));
  EXPECT_EQ(n.rt().awake_count(), 0u);
  EXPECT_EQ(*n.call(id, "getEvents"), arr({"create", "wake", "sleep", "wake"}));
  auto input = n.call(id, "getInput");
  EXPECT_EQ(*input, obj({{"input", obj({{"hello", "world"}})}, {"createInput", obj({{"hello", "world"}})}}));
  EXPECT_EQ(n.rt().find_by_id(id)->generation, 2u);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, IdleActorsFallAsleepAfterTheirSleepTimeout) {
  auto dir = temp_dir("idle");
  Registry reg;
  ActorDefinition def("quick");
  def.options(ActorOptions{std::chrono::milliseconds(50)})
      .action("ping", [](ActionContext&, const Array&) -> Result<Value> { return "pong"; });
  reg.add(def);
  Node n(dir, &reg);
  auto id = n.get_or_create("quick", {});
  EXPECT_EQ(*n.call(id, "ping"), Value("pong"));
  EXPECT_EQ(n.rt().awake_count(), 1u);
  for (int i = 0; i < 100 && n.rt().awake_count() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(n.rt().awake_count(), 0u);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, DestroyedActorIsGoneAndItsKeyMakesAFreshActor) {
  auto dir = temp_dir("destroy");
  Node n(dir);
  auto id = n.get_or_create("counter", {"gone"});
  ASSERT_EQ(n.call(id, "increment", {Value(5)})->as_int(), 5);
  EXPECT_EQ(*n.call(id, "destroy"), Value(true));
  EXPECT_FALSE(n.rt().find_by_id(id).has_value());
  auto after = n.call(id, "getCount");
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().qualified(), "actor.not_found");
  auto fresh = n.get_or_create("counter", {"gone"});
  EXPECT_NE(fresh, id);
  EXPECT_EQ(n.call(fresh, "getCount")->as_int(), 0);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, DestroyIsDurableAcrossRestart) {
  auto dir = temp_dir("destroy-restart");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("counter", {"gone2"});
    ASSERT_TRUE(n.call(id, "destroy").ok());
  }
  Node n(dir);
  EXPECT_FALSE(n.rt().find_by_id(id).has_value());
  EXPECT_FALSE(n.rt().find_by_key("default", "counter", {"gone2"}).has_value());
  std::filesystem::remove_all(dir);
}

TEST(Runtime, UnknownActionIsActionNotFound) {
  auto dir = temp_dir("noaction");
  Node n(dir);
  auto id = n.get_or_create("counter", {});
  auto r = n.call(id, "nonexistentAction");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.action_not_found");
  EXPECT_EQ(r.error().message, "Action `nonexistentAction` was not found.");
  std::filesystem::remove_all(dir);
}

TEST(Runtime, InternalExceptionsAreMaskedAndTheActorLivesOn) {
  auto dir = temp_dir("mask");
  Node n(dir);
  auto id = n.get_or_create("errors", {});
  auto r = n.call(id, "throwInternalError");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "rivetkit.internal_error");
  EXPECT_EQ(r.error().message, "An internal error occurred");
  EXPECT_FALSE(r.error().metadata.has_value());
  EXPECT_EQ(*n.call(id, "ok"), Value("ok"));
  std::filesystem::remove_all(dir);
}

// ------------------------------------------------------------------ hooks, KV, schedules

namespace {

void record(ActorContext& c, const std::string& what) {
  Value& log = c.mutate_state()["log"];
  if (!log.is_array()) log = Array{};
  log.as_array().emplace_back(what);
}

// Records every hook it sees, in order, into its own state.
ActorDefinition probe_actor() {
  ActorDefinition def("probe");
  def.create_state([](ActorContext&, const Value& input) -> Result<Value> {
       return obj({{"log", arr({"createState"})}, {"input", input.is_undefined() ? Value() : input}});
     })
      .on_create([](ActorContext& c, const Value&) { record(c, "onCreate"); return Status(Ok{}); })
      .create_vars([](ActorContext& c) -> Result<Value> { record(c, "createVars"); return obj({{"n", 0}}); })
      .on_wake([](ActorContext& c) { record(c, "onWake"); return Status(Ok{}); })
      .on_before_connect([](ActorContext& c, const Value&) { record(c, "onBeforeConnect"); return Status(Ok{}); })
      .create_conn_state([](ActorContext& c, const Value&) -> Result<Value> { record(c, "createConnState"); return Value(); })
      .on_connect([](ActorContext& c, Conn&) { record(c, "onConnect"); return Status(Ok{}); })
      .on_disconnect([](ActorContext& c, Conn&) { record(c, "onDisconnect"); return Status(Ok{}); })
      .on_sleep([](ActorContext& c) { record(c, "onSleep"); return Status(Ok{}); })
      .on_state_change([](ActorContext& c, const Value&) {
        Value& n = c.vars()["changes"];
        n = (n.is_int() ? n.as_int() : 0) + 1;
        return Status(Ok{});
      })
      .on_before_action_response([](ActorContext&, const std::string& action, const Array&, Value out) -> Result<Value> {
        if (action == "wrapped") return obj({{"wrapped", out}});
        return out;
      })
      .action("act", [](ActionContext& c, const Array&) -> Result<Value> { record(c, "action"); return true; })
      .action("wrapped", [](ActionContext&, const Array&) -> Result<Value> { return 7; })
      .action("log", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("log"); })
      .action("vars", [](ActionContext& c, const Array&) -> Result<Value> { return c.vars(); })
      .action("sleep", [](ActionContext& c, const Array&) -> Result<Value> { c.sleep(); return true; })
      .action("fail", [](ActionContext&, const Array&) -> Result<Value> { return user_error("nope", "failing"); })
      .action("later", [](ActionContext& c, const Array& args) -> Result<Value> {
        auto id = c.schedule_after(args[0].as_int(), "act", {});
        if (!id.ok()) return id.error();
        return Value(*id);
      })
      .action("kv", [](ActionContext& c, const Array& args) -> Result<Value> {
        const std::string op = args[0].as_string();
        if (op == "put") {
          auto st = c.kv_put(args[1].as_string(), args[2].as_string());
          if (!st.ok()) return st.error();
          auto back = c.kv_get(args[1].as_string());  // read-your-writes in the same turn
          return back.ok() && *back ? Value(**back) : Value();
        }
        if (op == "get") {
          auto v = c.kv_get(args[1].as_string());
          if (!v.ok()) return v.error();
          return *v ? Value(**v) : Value();
        }
        if (op == "del") return c.kv_delete(args[1].as_string()).ok() ? Value(true) : Value(false);
        if (op == "list") {
          auto l = c.kv_list_prefix(args[1].as_string(), {args.size() > 2 && args[2].as_bool(), 100});
          if (!l.ok()) return l.error();
          Array keys;
          for (auto& [k, _] : *l) keys.emplace_back(k);
          return Value(std::move(keys));
        }
        if (op == "batch") {
          std::vector<std::pair<std::string, std::string>> entries;
          for (int i = 0; i < args[1].as_int(); ++i) entries.emplace_back("b" + std::to_string(i), "v");
          auto st = c.kv_put_batch(entries);
          if (!st.ok()) return st.error();
          return true;
        }
        return user_error("unknown op");
      });
  return def;
}

Registry probe_registry() {
  Registry r;
  r.add(probe_actor());
  return r;
}

}  // namespace

TEST(Hooks, FirstStartRunsCreateStateOnCreateCreateVarsOnWakeThenTheConnectionHooksAroundTheAction) {
  auto dir = temp_dir("hooks-order");
  auto reg = probe_registry();
  Node n(dir, &reg);
  auto id = n.get_or_create("probe", {});
  ASSERT_TRUE(n.call(id, "act").ok());
  EXPECT_EQ(*n.call(id, "log"),
            arr({"createState", "onCreate", "createVars", "onWake", "onBeforeConnect", "createConnState", "onConnect",
                 "action", "onDisconnect",
                 // the `log` call's own ephemeral connection:
                 "onBeforeConnect", "createConnState", "onConnect"}));
  std::filesystem::remove_all(dir);
}

TEST(Hooks, WakeRunsCreateVarsAndOnWakeButNotCreateHooks) {
  auto dir = temp_dir("hooks-wake");
  auto reg = probe_registry();
  Node n(dir, &reg);
  auto id = n.get_or_create("probe", {});
  ASSERT_TRUE(n.call(id, "sleep").ok());
  auto log = n.call(id, "log")->as_array();
  std::vector<std::string> names;
  for (auto& v : log) names.push_back(v.as_string());
  auto count = [&](const char* s) { return std::count(names.begin(), names.end(), s); };
  EXPECT_EQ(count("createState"), 1);
  EXPECT_EQ(count("onCreate"), 1);
  EXPECT_EQ(count("onSleep"), 1);
  EXPECT_EQ(count("onWake"), 2);
  EXPECT_EQ(count("createVars"), 2);
  // onSleep comes after the sleeping turn's own disconnect and before the second wake.
  auto sleep_at = std::find(names.begin(), names.end(), "onSleep") - names.begin();
  auto wake2_at = std::find(names.begin() + sleep_at, names.end(), "onWake") - names.begin();
  EXPECT_LT(sleep_at, wake2_at);
  std::filesystem::remove_all(dir);
}

TEST(Hooks, VarsAreRebuiltOnEveryWakeAndNeverPersisted) {
  auto dir = temp_dir("hooks-vars");
  auto reg = probe_registry();
  Node n(dir, &reg);
  auto id = n.get_or_create("probe", {});
  ASSERT_TRUE(n.call(id, "act").ok());
  EXPECT_GE(n.call(id, "vars")->find("changes")->as_int(), 1);  // onStateChange ran
  ASSERT_TRUE(n.call(id, "sleep").ok());
  const Value v = *n.call(id, "vars");
  EXPECT_EQ(v.find("n")->as_int(), 0);
  std::filesystem::remove_all(dir);
}

TEST(Hooks, BeforeActionResponseMayReplaceTheOutput) {
  auto dir = temp_dir("hooks-bar");
  auto reg = probe_registry();
  Node n(dir, &reg);
  auto id = n.get_or_create("probe", {});
  EXPECT_EQ(*n.call(id, "wrapped"), obj({{"wrapped", 7}}));
  std::filesystem::remove_all(dir);
}

TEST(Hooks, AUserErrorReachesTheCallerUnchanged) {
  auto dir = temp_dir("hooks-err");
  auto reg = probe_registry();
  Node n(dir, &reg);
  auto id = n.get_or_create("probe", {});
  auto r = n.call(id, "fail");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "user.failing");
  EXPECT_EQ(r.error().message, "nope");
  std::filesystem::remove_all(dir);
}

TEST(Hooks, AFailingStartupHookFailsTheCallWithItsErrorAndTheNextCallRetries) {
  auto dir = temp_dir("hooks-startfail");
  Registry reg;
  auto attempts = std::make_shared<int>(0);
  ActorDefinition def("flaky");
  def.on_wake([attempts](ActorContext&) -> Status {
       if ((*attempts)++ == 0) return make_error("user", "not_ready", "first wake fails");
       return Ok{};
     })
      .action("ping", [](ActionContext&, const Array&) -> Result<Value> { return "pong"; });
  reg.add(def);
  Node n(dir, &reg);
  auto id = n.get_or_create("flaky", {});
  auto first = n.call(id, "ping");
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, "not_ready");
  EXPECT_EQ(*n.call(id, "ping"), Value("pong"));
  std::filesystem::remove_all(dir);
}

TEST(Schedules, AScheduleFiresAfterItsDelayAndWakesASleepingActor) {
  auto dir = temp_dir("sched-sleep");
  auto reg = probe_registry();
  Node n(dir, &reg);
  auto id = n.get_or_create("probe", {});
  ASSERT_TRUE(n.call(id, "later", {Value(100)}).ok());
  ASSERT_TRUE(n.call(id, "sleep").ok());
  EXPECT_EQ(n.rt().awake_count(), 0u);
  for (int i = 0; i < 100 && n.rt().awake_count() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto log = n.call(id, "log")->as_array();
  EXPECT_NE(std::find(log.begin(), log.end(), Value("action")), log.end());
  std::filesystem::remove_all(dir);
}

TEST(Schedules, AScheduleDueDuringDowntimeFiresAfterRestart) {
  auto dir = temp_dir("sched-restart");
  std::string id;
  auto reg = probe_registry();
  {
    Node n(dir, &reg);
    id = n.get_or_create("probe", {});
    ASSERT_TRUE(n.call(id, "later", {Value(300)}).ok());
  }  // node gone before the schedule is due
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  Node n(dir, &reg);
  bool fired = false;
  for (int i = 0; i < 100 && !fired; ++i) {
    auto log = n.call(id, "log")->as_array();
    fired = std::find(log.begin(), log.end(), Value("action")) != log.end();
    if (!fired) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(fired);
  std::filesystem::remove_all(dir);
}

TEST(Schedules, SchedulingAnUnknownActionIsActionNotFound) {
  auto dir = temp_dir("sched-unknown");
  Registry reg;
  ActorDefinition def("s");
  def.action("go", [](ActionContext& c, const Array&) -> Result<Value> {
    auto id = c.schedule_after(10, "missing", {});
    if (!id.ok()) return id.error();
    return true;
  });
  reg.add(def);
  Node n(dir, &reg);
  auto r = n.call(n.get_or_create("s", {}), "go");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "action_not_found");
  std::filesystem::remove_all(dir);
}

TEST(Kv, PutIsReadableInTheSameTurnAndAfterSleepAndRestart) {
  auto dir = temp_dir("kv-rw");
  auto reg = probe_registry();
  std::string id;
  {
    Node n(dir, &reg);
    id = n.get_or_create("probe", {});
    EXPECT_EQ(*n.call(id, "kv", {"put", "a", "1"}), Value("1"));
    EXPECT_EQ(*n.call(id, "kv", {"get", "a"}), Value("1"));
    ASSERT_TRUE(n.call(id, "sleep").ok());
    EXPECT_EQ(*n.call(id, "kv", {"get", "a"}), Value("1"));
  }
  Node n(dir, &reg);
  EXPECT_EQ(*n.call(id, "kv", {"get", "a"}), Value("1"));
  EXPECT_EQ(*n.call(id, "kv", {"del", "a"}), Value(true));
  EXPECT_TRUE(n.call(id, "kv", {"get", "a"})->is_null());
  std::filesystem::remove_all(dir);
}

TEST(Kv, ListsArePrefixScopedOrderedAndReversible) {
  auto dir = temp_dir("kv-list");
  auto reg = probe_registry();
  Node n(dir, &reg);
  auto id = n.get_or_create("probe", {});
  for (auto k : {"p/2", "p/1", "q/1", "p/3"}) ASSERT_TRUE(n.call(id, "kv", {"put", k, "x"}).ok());
  EXPECT_EQ(*n.call(id, "kv", {"list", "p/"}), arr({"p/1", "p/2", "p/3"}));
  EXPECT_EQ(*n.call(id, "kv", {"list", "p/", true}), arr({"p/3", "p/2", "p/1"}));
  ASSERT_TRUE(n.call(id, "kv", {"del", "p/2"}).ok());
  EXPECT_EQ(*n.call(id, "kv", {"list", "p/"}), arr({"p/1", "p/3"}));
  std::filesystem::remove_all(dir);
}

TEST(Kv, LimitsAreEnforcedWithClearErrors) {
  auto dir = temp_dir("kv-limits");
  auto reg = probe_registry();
  Node n(dir, &reg);
  auto id = n.get_or_create("probe", {});
  auto big_key = n.call(id, "kv", {"put", std::string(2049, 'k'), "v"});
  ASSERT_FALSE(big_key.ok());
  EXPECT_EQ(big_key.error().qualified(), "kv.key_too_large");
  auto big_value = n.call(id, "kv", {"put", "k", std::string(128 * 1024 + 1, 'v')});
  ASSERT_FALSE(big_value.ok());
  EXPECT_EQ(big_value.error().qualified(), "kv.value_too_large");
  EXPECT_TRUE(n.call(id, "kv", {"put", "k", std::string(128 * 1024, 'v')}).ok());
  auto batch = n.call(id, "kv", {"batch", 129});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.error().qualified(), "kv.batch_too_large");
  EXPECT_TRUE(n.call(id, "kv", {"batch", 128}).ok());
  std::filesystem::remove_all(dir);
}

TEST(Kv, DestroyDeletesTheActorsKv) {
  auto dir = temp_dir("kv-destroy");
  auto reg = probe_registry();
  Node n(dir, &reg);
  auto id = n.get_or_create("probe", {"x"});
  ASSERT_TRUE(n.call(id, "kv", {"put", "a", "1"}).ok());
  ASSERT_TRUE(n.run(n.rt().destroy(id)).ok());
  auto fresh = n.get_or_create("probe", {"x"});
  EXPECT_NE(fresh, id);
  EXPECT_TRUE(n.call(fresh, "kv", {"get", "a"})->is_null());
  std::filesystem::remove_all(dir);
}

TEST(Schedules, RecurringSchedulesFireOnTheirCadenceUntilCancelled) {
  auto dir = temp_dir("sched-every");
  Registry reg;
  ActorDefinition def("ticker");
  def.initial_state(obj({{"ticks", Array{}}}))
      .action("start", [](ActionContext& c, const Array&) -> Result<Value> {
        auto id = c.schedule_every("tick", 5000, "tick", {"x"});
        if (!id.ok()) return id.error();
        return Value(*id);
      })
      .action("tooFast", [](ActionContext& c, const Array&) -> Result<Value> {
        auto id = c.schedule_every("fast", 10, "tick", {});
        if (!id.ok()) return id.error();
        return Value(*id);
      })
      .action("stop", [](ActionContext& c, const Array& args) -> Result<Value> {
        auto r = c.cancel_schedule(args[0].as_string());
        if (!r.ok()) return r.error();
        return *r;
      })
      .action("tick", [](ActionContext& c, const Array& args) -> Result<Value> {
        c.mutate_state()["ticks"].as_array().push_back(args.size() > 1 ? *args[1].find("kind") : Value());
        return true;
      })
      .action("ticks", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("ticks"); });
  reg.add(def);
  Node n(dir, &reg);
  auto id = n.get_or_create("ticker", {});
  auto too_fast = n.call(id, "tooFast");
  ASSERT_FALSE(too_fast.ok());
  EXPECT_EQ(too_fast.error().qualified(), "schedule.invalid_interval");
  auto sid = n.call(id, "start");
  ASSERT_TRUE(sid.ok());
  EXPECT_EQ(sid->as_string(), "every:tick");
  std::this_thread::sleep_for(std::chrono::milliseconds(5400));
  EXPECT_EQ(*n.call(id, "ticks"), arr({"every"}));
  EXPECT_EQ(*n.call(id, "stop", {*sid}), Value(true));
  EXPECT_EQ(*n.call(id, "stop", {*sid}), Value(false));
  std::filesystem::remove_all(dir);
}

TEST(ActorToActor, CallsRunOnTheTargetAndRepliesComeBackToTheCaller) {
  auto dir = temp_dir("a2a");
  Registry reg;
  actors::register_fixtures(reg);
  ActorDefinition def("caller");
  def.initial_state(obj({{"replies", Array{}}}))
      .action("go", [](ActionContext& c, const Array& args) -> Result<Value> {
        c.call_actor("counter", {args[0].as_string()}, "increment", {Value(5)}, "onReply");
        c.call_actor("counter", {args[0].as_string()}, "noSuchAction", {}, "onReply");
        c.send_to("worker", {args[0].as_string()}, "jobs", obj({{"id", 1}, {"value", 21}}));
        return true;
      })
      .action("onReply", [](ActionContext& c, const Array& args) -> Result<Value> {
        c.mutate_state()["replies"].as_array().push_back(args[0]);
        return true;
      })
      .action("replies", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("replies"); });
  reg.add(def);
  Node n(dir, &reg);
  auto caller = n.get_or_create("caller", {});
  ASSERT_TRUE(n.call(caller, "go", {"t1"}).ok());
  Value replies;
  for (int i = 0; i < 200; ++i) {
    replies = *n.call(caller, "replies");
    if (replies.as_array().size() == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(replies.as_array().size(), 2u);
  bool saw_ok = false, saw_error = false;
  for (const auto& r : replies.as_array()) {
    if (r.find("ok")->as_bool()) {
      EXPECT_EQ(*r.find("output"), Value(5));
      saw_ok = true;
    } else {
      EXPECT_EQ(r.find("error")->find("code")->as_string(), "action_not_found");
      saw_error = true;
    }
  }
  EXPECT_TRUE(saw_ok && saw_error);
  auto worker = n.get_or_create("worker", {"t1"});
  Value processed;
  for (int i = 0; i < 200; ++i) {
    processed = *n.call(worker, "getProcessed");
    if (processed.as_array().size() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(processed, arr({obj({{"id", 1}, {"input", 21}, {"result", 42}})}));
  std::filesystem::remove_all(dir);
}

TEST(ActorToActor, MessagesFromOneSenderReachATargetInTheOrderTheyWereSent) {
  auto dir = temp_dir("a2a_order");
  Registry reg;
  ActorDefinition sender("sender");
  sender.action("burst", [](ActionContext& c, const Array& args) -> Result<Value> {
    // Each number as a call to one target and as a queue send to another.
    const int64_t from = args[0].as_int(), n = args[1].as_int();
    for (int64_t i = from; i < from + n; ++i) {
      c.call_actor("log", {"calls"}, "append", {Value(i)});
      c.send_to("log", {"queue"}, "entries", Value(i));
    }
    return true;
  });
  reg.add(sender);
  ActorDefinition log("log");
  log.initial_state(obj({{"seen", Array{}}}))
      .action("append", [](ActionContext& c, const Array& args) -> Result<Value> {
        c.mutate_state()["seen"].as_array().push_back(args[0]);
        return true;
      })
      .action("seen", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("seen"); })
      .queue("entries", [](ActorContext& c, const QueueMessage& m) -> Result<Value> {
        c.mutate_state()["seen"].as_array().push_back(m.body);
        return true;
      });
  reg.add(log);
  Node n(dir, &reg);
  auto s = n.get_or_create("sender", {"a"});
  constexpr int kBursts = 10, kPerBurst = 30;
  for (int b = 0; b < kBursts; ++b) ASSERT_TRUE(n.call(s, "burst", {Value(b * kPerBurst), Value(kPerBurst)}).ok());
  for (const char* which : {"calls", "queue"}) {
    auto target = n.get_or_create("log", {which});
    Value seen;
    for (int i = 0; i < 500; ++i) {
      seen = *n.call(target, "seen");
      if (seen.as_array().size() == size_t(kBursts * kPerBurst)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(seen.as_array().size(), size_t(kBursts * kPerBurst)) << which;
    for (int i = 0; i < kBursts * kPerBurst; ++i)
      ASSERT_EQ(seen.as_array()[size_t(i)], Value(int64_t(i))) << which << " at " << i;
  }
  std::filesystem::remove_all(dir);
}

TEST(Hooks, ActionsAndConnectionHooksOverTheirLimitAnswerTimeoutErrors) {
  auto dir = temp_dir("timeouts");
  Registry reg;
  ActorDefinition def("slow");
  ActorOptions opts;
  opts.action_timeout = std::chrono::milliseconds(20);
  opts.connection_hook_timeout = std::chrono::milliseconds(20);
  def.options(opts)
      .on_before_connect([](ActorContext&, const Value& params) -> Status {
        if (params.find("slow")) std::this_thread::sleep_for(std::chrono::milliseconds(40));
        return Ok{};
      })
      .action("slow", [](ActionContext&, const Array&) -> Result<Value> {
        std::this_thread::sleep_for(std::chrono::milliseconds(40));
        return true;
      })
      .action("fast", [](ActionContext&, const Array&) -> Result<Value> { return true; });
  reg.add(def);
  Node n(dir, &reg);
  auto id = n.get_or_create("slow", {});
  auto slow = n.call(id, "slow");
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().qualified(), "actor.action_timed_out");
  EXPECT_EQ(http_status_for(slow.error()), 408);
  auto rejected = n.run(n.rt().call_action(id, "fast", {}, obj({{"slow", true}}))).output;
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().qualified(), "actor.connect_timed_out");
  EXPECT_EQ(*n.call(id, "fast"), Value(true));
  std::filesystem::remove_all(dir);
}

TEST(State, ATurnThatGrowsTheStateBeyondOneMiBIsDiscardedWithStateTooLarge) {
  auto dir = temp_dir("state-limit");
  Registry reg;
  ActorDefinition def("big");
  def.initial_state(obj({{"blob", ""}, {"n", 0}}))
      .action("grow", [](ActionContext& c, const Array& args) -> Result<Value> {
        c.mutate_state()["n"] = 1;
        c.mutate_state()["blob"] = std::string(static_cast<size_t>(args[0].as_int()), 'x');
        if (auto st = c.kv_put("k", "v"); !st.ok()) return st.error();
        return true;
      })
      .action("get", [](ActionContext& c, const Array&) -> Result<Value> {
        auto kv = c.kv_get("k");
        return obj({{"n", *c.state().find("n")}, {"len", int64_t(c.state().find("blob")->as_string().size())},
                    {"kv", kv.ok() && *kv ? Value(**kv) : Value()}});
      });
  reg.add(def);
  Node n(dir, &reg);
  auto id = n.get_or_create("big", {});
  auto r = n.call(id, "grow", {Value(int64_t{2} * 1024 * 1024)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.state_too_large");
  EXPECT_EQ(*n.call(id, "get"), obj({{"n", 0}, {"len", 0}, {"kv", Value()}}));  // nothing of the turn landed
  EXPECT_EQ(*n.call(id, "grow", {Value(1000)}), Value(true));
  EXPECT_EQ(*n.call(id, "get"), obj({{"n", 1}, {"len", 1000}, {"kv", "v"}}));
  std::filesystem::remove_all(dir);
}

// A create held back for the actor's first turn (the gateway's cold path).
namespace {
Resolved deferred_create(Node& n, const std::string& name, ActorKey key) {
  CreateRequest cr;
  cr.name = name;
  cr.key = std::move(key);
  auto r = n.rt().get_or_create(cr, /*defer_commit=*/true);
  if (!r.ok()) throw std::runtime_error(r.error().message);
  return *r;
}
}  // namespace

TEST(DeferredCreate, TheFirstTurnCommitsTheCreateWithItsOwnWrites) {
  auto dir = temp_dir("defer-turn");
  std::string id;
  {
    Node n(dir);
    auto r = deferred_create(n, "counter", {"cold"});
    EXPECT_TRUE(r.created);
    EXPECT_EQ(r.seq, 0u);
    id = r.info.actor_id;
    ASSERT_EQ(n.call(id, "increment", {Value(2)})->as_int(), 2);
    EXPECT_EQ(n.rt().flush_create(id), 0u);  // nothing left to submit
  }
  Node n(dir);
  EXPECT_EQ(n.get_or_create("counter", {"cold"}), id);
  EXPECT_EQ(n.call(id, "getCount")->as_int(), 2);
  std::filesystem::remove_all(dir);
}

TEST(DeferredCreate, AnotherResolverOfTheKeySubmitsItAndGetsACommitToAwait) {
  auto dir = temp_dir("defer-other");
  std::string id;
  {
    Node n(dir);
    id = deferred_create(n, "counter", {"k"}).info.actor_id;
    CreateRequest cr;
    cr.name = "counter";
    cr.key = {"k"};
    auto second = n.rt().get_or_create(cr);
    ASSERT_TRUE(second.ok());
    EXPECT_FALSE(second->created);
    EXPECT_EQ(second->info.actor_id, id);
    ASSERT_GT(second->seq, 0u);
    ASSERT_TRUE(n.run(n.rt().durable(second->seq)).ok());
  }  // no turn ever ran on it
  Node n(dir);
  EXPECT_EQ(n.get_or_create("counter", {"k"}), id);
  std::filesystem::remove_all(dir);
}

TEST(DeferredCreate, FlushCreateMakesAnUntouchedActorDurable) {
  auto dir = temp_dir("defer-flush");
  std::string id;
  {
    Node n(dir);
    id = deferred_create(n, "counter", {"f"}).info.actor_id;
    uint64_t seq = n.rt().flush_create(id);
    ASSERT_GT(seq, 0u);
    ASSERT_TRUE(n.run(n.rt().durable(seq)).ok());
    EXPECT_EQ(n.rt().flush_create(id), 0u);
  }
  Node n(dir);
  EXPECT_EQ(n.get_or_create("counter", {"f"}), id);
  EXPECT_EQ(n.call(id, "getCount")->as_int(), 0);
  std::filesystem::remove_all(dir);
}

TEST(DeferredCreate, AFailedFirstStartStillCommitsTheCreate) {
  auto dir = temp_dir("defer-fail");
  Registry reg;
  ActorDefinition def("fails");
  def.initial_state(obj({{"n", 0}}))
      .on_create([](ActorContext&, const Value&) -> Status { return make_error("user", "nope", "onCreate fails"); })
      .action("get", [](ActionContext&, const Array&) -> Result<Value> { return Value(1); });
  reg.add(def);
  std::string id;
  {
    Node n(dir, &reg);
    id = deferred_create(n, "fails", {"x"}).info.actor_id;
    auto r = n.call(id, "get");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().qualified(), "user.nope");
  }
  Node n(dir, &reg);
  CreateRequest cr;
  cr.name = "fails";
  cr.key = {"x"};
  auto again = n.rt().get_or_create(cr);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->info.actor_id, id);
  std::filesystem::remove_all(dir);
}

TEST(DeferredCreate, ADiscardedFirstTurnKeepsTheActorAndItsInitialState) {
  auto dir = temp_dir("defer-discard");
  Registry reg;
  ActorDefinition def("big");
  def.initial_state(obj({{"blob", ""}}))
      .action("grow", [](ActionContext& c, const Array&) -> Result<Value> {
        c.mutate_state()["blob"] = std::string(2 * 1024 * 1024, 'x');
        return true;
      })
      .action("len", [](ActionContext& c, const Array&) -> Result<Value> {
        return int64_t(c.state().find("blob")->as_string().size());
      });
  reg.add(def);
  std::string id;
  {
    Node n(dir, &reg);
    id = deferred_create(n, "big", {"d"}).info.actor_id;
    auto r = n.call(id, "grow");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().qualified(), "actor.state_too_large");
  }  // restart right after the discarded turn: nothing else committed it
  Node n(dir, &reg);
  EXPECT_EQ(n.get_or_create("big", {"d"}), id);
  EXPECT_EQ(n.call(id, "len")->as_int(), 0);
  std::filesystem::remove_all(dir);
}
