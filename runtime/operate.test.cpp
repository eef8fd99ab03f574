// The operator's live reads and changes (Runtime::admin_operate) and the
// inspector token, on a real node: each one a turn, durable before it
// answers, seen by a node restarted on the same directory.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"
#include "runtime/inspect.hpp"
#include "runtime/runtime.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using anvil::testing::Node;

namespace {

struct NullSink : ConnSink {
  void send_event(const std::string&, const Array&) override {}
  void close(uint16_t, const std::string&) override {}
};

// flaky: a run workflow whose step "work" fails while state.fail is set.
ActorDefinition flaky_actor() {
  ActorDefinition def("flaky");
  def.initial_state(obj({{"fail", true}, {"worked", 0}}))
      .run([](Workflow& wf) -> Result<Value> {
        auto r = wf.step("work", [&]() -> Result<Value> {
          if (wf.actor().state().find("fail")->as_bool()) return user_error("broken", "work failed");
          Value& w = wf.actor().mutate_state()["worked"];
          w = w.as_int() + 1;
          return 7;
        }, StepOptions{1, std::chrono::milliseconds(1), {}});
        if (!r.ok()) return r.error();
        return *r;
      })
      .action("worked", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("worked"); })
      .action("heal", [](ActionContext& c, const Array&) -> Result<Value> {
        c.mutate_state()["fail"] = false;
        return true;
      });
  return def;
}

const Registry& registry() {
  static const Registry reg = [] {
    Registry r;
    actors::register_fixtures(r);
    r.add(flaky_actor());
    return r;
  }();
  return reg;
}

Result<Value> operate(Node& node, const std::string& id, AdminOp::Kind kind, std::string name = {},
                      Value value = {}) {
  AdminOp op;
  op.kind = kind;
  op.name = std::move(name);
  op.value = std::move(value);
  return node.run(node.rt().admin_operate(id, std::move(op))).output;
}

Value view(Node& node, const std::string& id, inspect::View v, const std::string& arg = {}) {
  auto pending = node.rt().admin_actor(id, v, arg);
  if (!pending.ok()) throw std::runtime_error(pending.error().message);
  auto out = node.run(node.rt().once_durable(std::move(*pending)));
  if (!out.ok()) throw std::runtime_error(out.error().message);
  return *out;
}

}  // namespace

TEST(Operate, EveryActorGetsAnInspectorTokenThatSurvivesARestart) {
  auto dir = anvil::testing::temp_dir("op-token");
  std::string id, token;
  {
    Node node(dir, registry());
    id = node.get_or_create("counter", {"t"});
    token = node.rt().inspector_token(id).value_or("");
    EXPECT_EQ(token.size(), 64u);
    const std::string other = node.get_or_create("counter", {"u"});
    EXPECT_NE(node.rt().inspector_token(other).value_or(""), token);
    EXPECT_EQ(view(node, id, inspect::View::kDetail).find("inspectorToken")->as_string(), token);
  }
  Node node(dir, registry());
  EXPECT_EQ(node.rt().inspector_token(id).value_or(""), token);
  EXPECT_FALSE(node.rt().inspector_token("nosuchactor00000000000000").has_value());
}

TEST(Operate, TheStateReadIsTheAwakeActorsState) {
  Node node(anvil::testing::temp_dir("op-state"), registry());
  const std::string id = node.get_or_create("counter", {"s"});
  ASSERT_TRUE(node.call(id, "increment", {Value(4)}).ok());
  auto s = operate(node, id, AdminOp::Kind::kState);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->find("count")->as_int(), 4);
}

TEST(Operate, ConnectionsListTheOpenConnectionsWithParamsAndState) {
  Node node(anvil::testing::temp_dir("op-conns"), registry());
  const std::string id = node.get_or_create("chatRoom", {"c"});
  auto r = node.run(node.rt().connect(id, obj({{"username", "alice"}}), std::make_shared<NullSink>()));
  ASSERT_TRUE(r.output.ok()) << r.output.error().message;
  auto conns = operate(node, id, AdminOp::Kind::kConnections);
  ASSERT_TRUE(conns.ok());
  ASSERT_EQ(conns->as_array().size(), 1u);
  const Value& c = conns->as_array()[0];
  EXPECT_EQ(c.find("params")->find("username")->as_string(), "alice");
  EXPECT_EQ(c.find("state")->find("username")->as_string(), "alice");
  EXPECT_FALSE(c.find("ephemeral")->as_bool());
}

TEST(Operate, AnOperatorsMessageMayNameAnyQueueAndIsDurable) {
  auto dir = anvil::testing::temp_dir("op-queue");
  std::string id;
  {
    Node node(dir, registry());
    id = node.get_or_create("counter", {"q"});
    auto sent = operate(node, id, AdminOp::Kind::kQueueSend, "inbox", obj({{"hello", "world"}}));
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    EXPECT_EQ(sent->find("name")->as_string(), "inbox");
    EXPECT_TRUE(sent->find("id")->is_string());
  }
  Node node(dir, registry());
  const Value q = view(node, id, inspect::View::kQueue);
  EXPECT_EQ(q.find("size")->as_int(), 1);
  EXPECT_EQ(q.find("maxSize")->as_int(), 1000);
  EXPECT_EQ(q.find("messages")->as_array()[0].find("body")->find("hello")->as_string(), "world");
}

TEST(Operate, APurgeEmptiesTheQueueDurably) {
  auto dir = anvil::testing::temp_dir("op-purge");
  std::string id;
  {
    Node node(dir, registry());
    id = node.get_or_create("counter", {"p"});
    ASSERT_TRUE(operate(node, id, AdminOp::Kind::kQueueSend, "a", Value(1)).ok());
    ASSERT_TRUE(operate(node, id, AdminOp::Kind::kQueueSend, "b", Value(2)).ok());
    auto purged = operate(node, id, AdminOp::Kind::kQueuePurge);
    ASSERT_TRUE(purged.ok());
    EXPECT_EQ(purged->find("purged")->as_int(), 2);
  }
  Node node(dir, registry());
  EXPECT_EQ(view(node, id, inspect::View::kQueue).find("size")->as_int(), 0);
}

TEST(Operate, TheQueueViewCountsAllButListsAtMostTheLimit) {
  Node node(anvil::testing::temp_dir("op-qlimit"), registry());
  const std::string id = node.get_or_create("counter", {"l"});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(operate(node, id, AdminOp::Kind::kQueueSend, "x", Value(i)).ok());
  const Value q = view(node, id, inspect::View::kQueue, "2");
  EXPECT_EQ(q.find("size")->as_int(), 3);
  EXPECT_EQ(q.find("messages")->as_array().size(), 2u);
  EXPECT_TRUE(q.find("truncated")->as_bool());
}

TEST(Operate, ACancelledScheduleIsGoneAndCancellingItAgainSaysSo) {
  Node node(anvil::testing::temp_dir("op-sched"), registry());
  const std::string id = node.get_or_create("scheduler", {"s"});
  ASSERT_TRUE(node.call(id, "scheduleAfter", {Value(600000), Value("later")}).ok());
  const Value before = view(node, id, inspect::View::kSchedules);
  ASSERT_EQ(before.as_array().size(), 1u);
  const std::string sid = before.as_array()[0].find("id")->as_string();
  auto r = operate(node, id, AdminOp::Kind::kCancelSchedule, sid);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->find("cancelled")->as_bool());
  EXPECT_TRUE(view(node, id, inspect::View::kSchedules).as_array().empty());
  EXPECT_FALSE(operate(node, id, AdminOp::Kind::kCancelSchedule, sid)->find("cancelled")->as_bool());
}

TEST(Operate, AFailedWorkflowReplayedFromItsStepRunsTheStepAgain) {
  Node node(anvil::testing::temp_dir("op-replay"), registry());
  const std::string id = node.get_or_create("flaky", {"r"});
  // The run fails at "work".
  Value hist;
  for (int i = 0; i < 300; ++i) {
    hist = view(node, id, inspect::View::kWorkflow);
    bool failed = false;
    for (const auto& r : hist.as_array())
      failed = failed || (r.find("path")->as_string().empty() && r.find("status")->as_string() == "failed");
    if (failed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(node.call(id, "heal").ok());
  auto r = operate(node, id, AdminOp::Kind::kWorkflowReplay, "work");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->find("erased")->as_int(), 1);
  EXPECT_EQ(node.wait_for(id, "worked", [](const Value& v) { return v.as_int() == 1; }).as_int(), 1);
}

TEST(Operate, AWorkflowStillRunningIsNotReplayed) {
  Node node(anvil::testing::temp_dir("op-inflight"), registry());
  const std::string id = node.get_or_create("worker", {"w"});
  node.send(id, "jobs", obj({{"id", 1}, {"value", 2}}));
  node.wait_for(id, "getProcessed", [](const Value& v) { return v.as_array().size() == 1; });
  auto r = operate(node, id, AdminOp::Kind::kWorkflowReplay);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "workflow_in_flight");
}

TEST(Operate, ReplayingFromAnEntryThatDoesNotExistIsRefused) {
  Node node(anvil::testing::temp_dir("op-noentry"), registry());
  const std::string id = node.get_or_create("flaky", {"n"});
  for (int i = 0; i < 300 && view(node, id, inspect::View::kWorkflow).as_array().size() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto r = operate(node, id, AdminOp::Kind::kWorkflowReplay, "nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "workflow_entry_not_found");
}

TEST(Operate, TheWorkflowHistoryInRivetsShapeNamesLoopIterations) {
  Node node(anvil::testing::temp_dir("op-rivetwf"), registry());
  const std::string id = node.get_or_create("worker", {"h"});
  node.send(id, "jobs", obj({{"id", 1}, {"value", 2}}));
  node.wait_for(id, "getProcessed", [](const Value& v) { return v.as_array().size() == 1; });
  const Value w = view(node, id, inspect::View::kRivetWorkflow);
  EXPECT_EQ(w.find("workflowState")->as_string(), "sleeping");
  const Value& h = *w.find("history");
  EXPECT_EQ(h.find("nameRegistry")->as_array()[0].as_string(), "job-loop");
  bool saw_marker = false;
  for (const auto& e : h.find("entries")->as_array()) {
    for (const auto& seg : e.find("location")->as_array())
      saw_marker = saw_marker || seg.find("tag")->as_string() == "WorkflowLoopIterationMarker";
    EXPECT_NE(h.find("entryMetadata")->find(e.find("id")->as_string()), nullptr);
  }
  EXPECT_TRUE(saw_marker);
}

TEST(Operate, SqlExecuteWritesTheActorsDatabaseInATurn) {
  Node node(anvil::testing::temp_dir("op-sql"), registry());
  const std::string id = node.get_or_create("dbCounter", {"d"});
  auto w = operate(node, id, AdminOp::Kind::kSqlExecute, "INSERT INTO adds (n) VALUES (?)", Value(Array{Value(5)}));
  ASSERT_TRUE(w.ok()) << w.error().message;
  const Value sum = view(node, id, inspect::View::kSql, "SELECT SUM(n) AS total FROM adds");
  EXPECT_EQ(sum.find("rows")->as_array()[0].as_array()[0].as_int(), 5);
}

TEST(Operate, SqlExecuteOnAnActorWithoutADatabaseIsRefused) {
  Node node(anvil::testing::temp_dir("op-nosql"), registry());
  const std::string id = node.get_or_create("counter", {"x"});
  auto r = operate(node, id, AdminOp::Kind::kSqlExecute, "SELECT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "not_enabled");
}
