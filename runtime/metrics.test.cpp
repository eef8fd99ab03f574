// What /metrics says about actors (real RocksDB): actions by outcome, errors
// by code, queue depth, schedule lag, sleeps, the commit pipeline and storage.
#include <gtest/gtest.h>

#include "runtime/test_node.hpp"

using namespace anvil;
using anvil::testing::Node;
using anvil::testing::temp_dir;

namespace {

Registry shop() {
  Registry r;
  ActorDefinition def("shop");
  def.initial_state(obj({{"n", 0}}))
      .action("buy", [](ActionContext& c, const Array&) -> Result<Value> {
        c.mutate_state()["n"] = c.state().find("n")->as_int() + 1;
        return true;
      })
      .action("refuse", [](ActionContext&, const Array&) -> Result<Value> {
        return make_error("shop", "sold_out", "Nothing left.");
      })
      .action("later", [](ActionContext& c, const Array&) -> Result<Value> {
        auto id = c.schedule_after(0, "buy", {});
        if (!id.ok()) return id.error();
        return true;
      })
      .action("nap", [](ActionContext& c, const Array&) -> Result<Value> {
        c.sleep();
        return true;
      })
      .queue("orders");  // no handler: messages wait (for a workflow that never takes them)
  r.add(std::move(def));
  return r;
}

}  // namespace

TEST(Metrics, ActionsAreCountedByTypeNameAndOutcomeAndErrorsByCode) {
  auto dir = temp_dir("metrics");
  Registry reg = shop();
  Node n(dir, reg);
  auto id = n.get_or_create("shop", {"a"});
  ASSERT_TRUE(n.call(id, "buy").ok());
  ASSERT_TRUE(n.call(id, "buy").ok());
  ASSERT_FALSE(n.call(id, "refuse").ok());
  ASSERT_FALSE(n.call(id, "noSuchAction").ok());
  EXPECT_EQ(n.metric(R"(anvil_actions_total{name="shop",action="buy",outcome="ok"})"), 2);
  EXPECT_EQ(n.metric(R"(anvil_actions_total{name="shop",action="refuse",outcome="error"})"), 1);
  EXPECT_EQ(n.metric(R"(anvil_actions_total{name="shop",action="",outcome="error"})"), 1)
      << "an unknown action name is not a label value";
  EXPECT_EQ(n.metric(R"(anvil_errors_total{group="shop",code="sold_out"})"), 1);
  EXPECT_EQ(n.metric(R"(anvil_errors_total{group="actor",code="action_not_found"})"), 1);
  EXPECT_EQ(n.metric(R"(anvil_action_seconds_count{name="shop"})"), 3);
  EXPECT_FALSE(n.metric(R"(anvil_actions_total{name="shop",action="noSuchAction",outcome="error"})"));
  std::filesystem::remove_all(dir);
}

TEST(Metrics, QueueDepthFollowsTheMessagesWaitingInAwakeActors) {
  auto dir = temp_dir("metrics");
  Registry reg = shop();
  Node n(dir, reg);
  auto a = n.get_or_create("shop", {"a"});
  auto b = n.get_or_create("shop", {"b"});
  n.send(a, "orders", Value(1));
  n.send(a, "orders", Value(2));
  n.send(b, "orders", Value(3));
  EXPECT_EQ(n.metric(R"(anvil_queue_messages{name="shop"})"), 3);
  EXPECT_EQ(n.metric(R"(anvil_queue_messages_total{name="shop",event="enqueued"})"), 3);
  ASSERT_TRUE(n.call(b, "nap").ok());
  for (int i = 0; i < 200 && n.metric(R"(anvil_queue_messages{name="shop"})") != 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(n.metric(R"(anvil_queue_messages{name="shop"})"), 2) << "an actor asleep no longer counts";
  EXPECT_EQ(n.metric(R"(anvil_actor_sleeps_total{name="shop"})"), 1);
  std::filesystem::remove_all(dir);
}

TEST(Metrics, ASchedulesLagCommitsAndStorageAreReported) {
  auto dir = temp_dir("metrics");
  Registry reg = shop();
  Node n(dir, reg);
  auto id = n.get_or_create("shop", {"a"});
  ASSERT_TRUE(n.call(id, "later").ok());
  n.wait_for(id, "buy", [](const Value&) { return true; });
  for (int i = 0; i < 200 && n.metric(R"(anvil_schedule_lag_seconds_count{name="shop"})") != 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(n.metric(R"(anvil_schedule_lag_seconds_count{name="shop"})"), 1);
  EXPECT_GE(n.metric("anvil_commit_seconds_count").value_or(0), 2);
  EXPECT_GE(n.metric("anvil_wal_sync_seconds_count").value_or(0), 1);
  EXPECT_GE(n.metric("anvil_commit_group_batches_count").value_or(0), 1);
  EXPECT_GT(n.metric(R"(anvil_storage_filesystem_bytes{kind="size"})").value_or(0), 0);
  EXPECT_TRUE(n.metric(R"(anvil_storage_bytes{kind="pending_compaction"})").has_value());
  EXPECT_EQ(n.metric(R"(anvil_storage_write_stall{kind="stopped"})"), 0);
  std::filesystem::remove_all(dir);
}
