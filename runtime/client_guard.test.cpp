// on_before_connect_async: the awaitable guard the gateway runs before every
// client request. It waits like an async action, sees the state, is bounded
// by the connection hook limit, and is skipped by the node's own calls.
// Real RocksDB through the in-process node.
#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>

#include "runtime/test_node.hpp"

using namespace anvil;
using anvil::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

// Admits clients whose params name a user in the state's `members`, after a
// pause (as a key fetch would take); `hold` pauses past the hook limit.
ActorDefinition club() {
  ActorDefinition def("club");
  ActorOptions o;
  o.connection_hook_timeout = 200ms;
  def.options(o)
      .initial_state(obj({{"members", Array{Value("alice")}}, {"visits", 0}}))
      .on_before_connect_async([](ActorContext& c, ClientRequest req) -> Task<Status> {
        const Value* user = req.params.is_object() ? req.params.find("user") : nullptr;
        const bool hold = req.params.is_object() && req.params.find("hold");
        const auto pause = hold ? 2s : 10ms;  // (no ?: inside co_await with GCC 12)
        auto paused = co_await c.sleep_for(pause);
        if (!paused.ok()) co_return paused.error();
        if (const Value* until = req.params.is_object() ? req.params.find("until") : nullptr; until && until->is_int()) {
          c.client_valid_until(until->as_int() + 1000);
          c.client_valid_until(until->as_int());  // the earliest counts
        }
        for (const Value& m : c.state().find("members")->as_array())
          if (user && user->is_string() && m.as_string() == user->as_string()) co_return Ok{};
        co_return make_error("auth", "forbidden", "Members only.", obj({{"kind", req.kind}}));
      })
      .action("visit", [](ActionContext& c, const Array&) -> Result<Value> {
        auto& v = c.mutate_state()["visits"];
        v = v.as_int() + 1;
        return v;
      });
  return def;
}

ActorDefinition open_house() {
  ActorDefinition def("openHouse");
  def.action("visit", [](ActionContext&, const Array&) -> Result<Value> { return Value(1); });
  return def;
}

class ClientGuard : public ::testing::Test {
 protected:
  ClientGuard() : dir_(temp_dir("client-guard")) {
    reg_.add(club());
    reg_.add(open_house());
    node_ = std::make_unique<anvil::testing::Node>(dir_, reg_);
  }
  ~ClientGuard() override {
    node_.reset();
    std::filesystem::remove_all(dir_);
  }
  Result<Value> guard(const std::string& id, Value params, std::string kind = "action") {
    ClientRequest req;
    req.kind = std::move(kind);
    req.params = std::move(params);
    return node_->run(node_->rt().guard_client(id, std::move(req))).output;
  }

  std::string dir_;
  Registry reg_;
  std::unique_ptr<anvil::testing::Node> node_;
};

TEST_F(ClientGuard, AGuardThatWaitsAdmitsTheClientsItsStateAllows) {
  auto id = node_->get_or_create("club");
  EXPECT_TRUE(guard(id, obj({{"user", "alice"}})).ok());
}

TEST_F(ClientGuard, AGuardNamesUntilWhenTheCredentialsItAcceptedAreValid) {
  auto id = node_->get_or_create("club");
  auto limited = guard(id, obj({{"user", "alice"}, {"until", 1'900'000'000'000}}), "connect");
  ASSERT_TRUE(limited.ok()) << limited.error().message;
  EXPECT_EQ(limited->find("validUntil")->as_int(), 1'900'000'000'000);
  auto unlimited = guard(id, obj({{"user", "alice"}}), "connect");
  ASSERT_TRUE(unlimited.ok());
  EXPECT_FALSE(unlimited->is_object() && unlimited->find("validUntil")) << "no expiry unless the guard names one";
}

TEST_F(ClientGuard, ARefusalReachesTheClientWithItsGroupCodeAndMetadata) {
  auto id = node_->get_or_create("club");
  auto r = guard(id, obj({{"user", "mallory"}}), "connect");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "auth.forbidden");
  EXPECT_EQ(r.error().metadata->find("kind")->as_string(), "connect");
  EXPECT_FALSE(guard(id, Value()).ok()) << "no params, no member";
}

TEST_F(ClientGuard, AGuardPastTheConnectionHookLimitIsConnectTimedOut) {
  auto id = node_->get_or_create("club");
  auto r = guard(id, obj({{"user", "alice"}, {"hold", true}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.connect_timed_out");
}

TEST_F(ClientGuard, TheNodesOwnCallsDoNotRunIt) {
  auto id = node_->get_or_create("club");
  auto r = node_->call(id, "visit");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->as_int(), 1);
}

TEST_F(ClientGuard, ATypeWithoutAGuardAdmitsWithoutWakingTheActor) {
  auto id = node_->get_or_create("openHouse");
  EXPECT_TRUE(guard(id, Value()).ok());
  EXPECT_EQ(node_->rt().awake_count(), 0u);
}

}  // namespace
