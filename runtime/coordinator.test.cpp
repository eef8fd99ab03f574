// Coordinator support in the runtime: types only their coordinator creates
// (ActorDefinition::created_only_by), the calling actor an action sees
// (ActionContext::caller_actor), and wakes counted per type (real RocksDB).
#include <gtest/gtest.h>

#include "runtime/test_node.hpp"

using namespace anvil;
using anvil::testing::temp_dir;

namespace {

Error not_found() { return make_error("tree", "not_found", "No such child; its parent never made it."); }

// `parent [p]` makes `child [p, c]` by calling it; `child` reports who called.
Registry tree() {
  Registry r;
  ActorDefinition parent("parent");
  parent.async_action("makeChild", [](ActionContext& c, Array args) -> Task<Result<Value>> {
    std::string name = "child";
    std::string action = "whoCalled";
    ActorKey key{c.key()[0], args.at(0).as_string()};
    co_return co_await c.call(std::move(name), std::move(key), std::move(action));
  });
  parent.action("tellChild", [](ActionContext& c, const Array& args) -> Result<Value> {
    c.call_actor("child", ActorKey{c.key()[0], args.at(0).as_string()}, "remember", {Value(std::string("told"))});
    return Value(true);
  });
  parent.action("nap", [](ActionContext& c, const Array&) -> Result<Value> {
    c.sleep();
    return Value(true);
  });
  r.add(std::move(parent));

  ActorDefinition child("child");
  child.initial_state(obj({{"note", Value()}}))
      .created_only_by({"parent"}, not_found())
      .action("whoCalled", [](ActionContext& c, const Array&) -> Result<Value> {
        const CallerActor* from = c.caller_actor();
        if (!from) return Value();
        Array key;
        for (const auto& part : from->key) key.push_back(Value(part));
        return obj({{"name", from->name}, {"key", Value(std::move(key))}, {"id", from->actor_id}});
      })
      .action("remember", [](ActionContext& c, const Array& args) -> Result<Value> {
        const CallerActor* from = c.caller_actor();
        c.mutate_state()["note"] = args.at(0).as_string() + " by " + (from ? from->name : "nobody");
        return Value(true);
      })
      .action("note", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("note"); })
      .action("nap", [](ActionContext& c, const Array&) -> Result<Value> {
        c.sleep();
        return Value(true);
      });
  r.add(std::move(child));

  // Not a creator of `child`.
  ActorDefinition stranger("stranger");
  stranger.async_action("makeChild", [](ActionContext& c, Array args) -> Task<Result<Value>> {
    std::string name = "child";
    std::string action = "whoCalled";
    ActorKey key{args.at(0).as_string(), args.at(1).as_string()};
    co_return co_await c.call(std::move(name), std::move(key), std::move(action));
  });
  r.add(std::move(stranger));
  return r;
}

Result<Resolved> client_get_or_create(anvil::testing::Node& n, std::string name, ActorKey key) {
  CreateRequest cr;
  cr.name = std::move(name);
  cr.key = std::move(key);
  return n.rt().get_or_create(cr);
}

}  // namespace

TEST(CreatedOnlyBy, AClientNamingAKeyTheCoordinatorNeverMadeGetsTheTypesErrorAndNothingIsCreated) {
  auto dir = temp_dir("coordinator");
  Registry reg = tree();
  anvil::testing::Node n(dir, reg);
  auto r = client_get_or_create(n, "child", {"p1", "c1"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "tree.not_found");
  EXPECT_FALSE(n.rt().find_by_key("default", "child", {"p1", "c1"}).has_value());
  CreateRequest create;
  create.name = "child";
  create.key = {"p1", "c2"};
  auto c = n.rt().create(create);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().qualified(), "tree.not_found");
  EXPECT_FALSE(n.rt().find_by_key("default", "child", {"p1", "c2"}).has_value());
}

TEST(CreatedOnlyBy, TheCoordinatorCreatesItsChildAndClientsThenReachTheExistingOne) {
  auto dir = temp_dir("coordinator");
  Registry reg = tree();
  anvil::testing::Node n(dir, reg);
  auto parent = n.get_or_create("parent", {"p1"});
  auto made = n.call(parent, "makeChild", {Value(std::string("c1"))});
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto r = client_get_or_create(n, "child", {"p1", "c1"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->created);
  EXPECT_TRUE(n.call(r->info.actor_id, "whoCalled").ok());
}

TEST(CreatedOnlyBy, AnotherActorTypeCannotCreateTheChildEither) {
  auto dir = temp_dir("coordinator");
  Registry reg = tree();
  anvil::testing::Node n(dir, reg);
  auto stranger = n.get_or_create("stranger", {"s"});
  auto r = n.call(stranger, "makeChild", {Value(std::string("p1")), Value(std::string("c1"))});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "tree.not_found");
  EXPECT_FALSE(n.rt().find_by_key("default", "child", {"p1", "c1"}).has_value());
}

TEST(CallerActor, AnActionCalledByAnotherActorSeesItsTypeKeyAndIdAndAClientCallSeesNone) {
  auto dir = temp_dir("coordinator");
  Registry reg = tree();
  anvil::testing::Node n(dir, reg);
  auto parent = n.get_or_create("parent", {"p1"});
  auto who = n.call(parent, "makeChild", {Value(std::string("c1"))});
  ASSERT_TRUE(who.ok()) << who.error().message;
  EXPECT_EQ(who->find("name")->as_string(), "parent");
  EXPECT_EQ(who->find("key")->as_array().at(0).as_string(), "p1");
  EXPECT_EQ(who->find("id")->as_string(), parent);
  auto child = n.rt().find_by_key("default", "child", {"p1", "c1"});
  ASSERT_TRUE(child.has_value());
  auto from_client = n.call(child->actor_id, "whoCalled");
  ASSERT_TRUE(from_client.ok());
  EXPECT_TRUE(from_client->is_null());
}

TEST(CallerActor, AMessageSentAfterTheTurnCarriesItsSenderAndMayCreate) {
  auto dir = temp_dir("coordinator");
  Registry reg = tree();
  anvil::testing::Node n(dir, reg);
  auto parent = n.get_or_create("parent", {"p1"});
  ASSERT_TRUE(n.call(parent, "tellChild", {Value(std::string("c9"))}).ok());
  std::optional<ActorInfo> child;
  for (int i = 0; i < 200 && !child; ++i) {
    child = n.rt().find_by_key("default", "child", {"p1", "c9"});
    if (!child) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(child.has_value());
  auto note = n.wait_for(child->actor_id, "note", [](const Value& v) { return v.is_string(); });
  EXPECT_EQ(note.as_string(), "told by parent");
}

TEST(ActorWakes, EachStartOfAnActorCountsOnceForItsTypeAndReadingAnotherTypeCountsNothing) {
  auto dir = temp_dir("coordinator");
  Registry reg = tree();
  anvil::testing::Node n(dir, reg);
  EXPECT_EQ(n.actor_wakes("child"), 0u);
  auto parent = n.get_or_create("parent", {"p1"});
  ASSERT_TRUE(n.call(parent, "makeChild", {Value(std::string("c1"))}).ok());
  EXPECT_EQ(n.actor_wakes("parent"), 1u);
  EXPECT_EQ(n.actor_wakes("child"), 1u);
  auto child = n.rt().find_by_key("default", "child", {"p1", "c1"});
  ASSERT_TRUE(child.has_value());
  ASSERT_TRUE(n.call(child->actor_id, "nap").ok());
  ASSERT_TRUE(n.call(parent, "nap").ok());
  for (int i = 0; i < 300 && n.rt().awake_count() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(n.rt().awake_count(), 0u);
  EXPECT_EQ(n.actor_wakes("child"), 1u);
  ASSERT_TRUE(n.call(child->actor_id, "whoCalled").ok());  // wakes it
  EXPECT_EQ(n.actor_wakes("child"), 2u);
  EXPECT_EQ(n.actor_wakes("parent"), 1u);
}

// Outboxes upsert one recurring schedule on every push; a burst of them in
// turns not yet committed is still one schedule (the 1,000-schedule limit
// counts schedules, not upserts).
TEST(RecurringSchedules, UpsertingOneRecurringScheduleManyTimesBeforeItCommitsCountsItOnce) {
  auto dir = temp_dir("coordinator");
  Registry reg;
  ActorDefinition ticker("ticker");
  ticker.action("tick", [](ActionContext&, const Array&) -> Result<Value> { return Value(true); })
      .action("upsertMany", [](ActionContext& c, const Array&) -> Result<Value> {
        for (int i = 0; i < 1500; ++i)
          if (auto id = c.schedule_every("retry", 5000, "tick", {}); !id.ok()) return id.error();
        return Value(true);
      })
      .action("cancel", [](ActionContext& c, const Array&) -> Result<Value> {
        auto r = c.cancel_schedule("every:retry");
        if (!r.ok()) return r.error();
        return Value(*r);
      });
  reg.add(std::move(ticker));
  anvil::testing::Node n(dir, reg);
  auto id = n.get_or_create("ticker", {"t"});
  auto r = n.call(id, "upsertMany");
  ASSERT_TRUE(r.ok()) << r.error().qualified();
  auto cancelled = n.call(id, "cancel");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_TRUE(cancelled->as_bool());
}
