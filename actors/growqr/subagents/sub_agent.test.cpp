// subAgent against the OpenCode fake, real Postgres and the in-process node.
// growAgent is a stand-in here that records onSubAgentProgress calls.
#include "actors/growqr/subagents/sub_agent.hpp"

#include "actors/growqr/missions/growqr_test_env.hpp"
#include "tests/fakes/opencode_fake.hpp"

namespace anvil::growqr {
namespace {

using namespace std::chrono_literals;
using testing::GrowqrTest;

const Registry& registry_with_stand_in() {
  static const Registry reg = [] {
    Registry r;
    for (const auto& d : testing::parts_app().actors())
      if (d.name() != "growAgent") r.add(d);
    ActorDefinition agent("growAgent");
    agent.initial_state(obj({{"calls", Array{}}}))
        .action("onSubAgentProgress",
                [](ActionContext& c, const Array& args) -> Result<Value> {
                  c.mutate_state()["calls"].as_array().push_back(args.empty() ? Value() : args[0]);
                  return true;
                })
        .action("getCalls", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("calls"); });
    r.add(agent);
    return r;
  }();
  return reg;
}

class SubAgentTest : public GrowqrTest {
 protected:
  SubAgentTest() { registry_ = &registry_with_stand_in(); }
  void SetUp() override {
    GrowqrTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    config_["OPENCODE_URL"] = oc_.url();
  }

  Result<Value> agent(const std::string& action, Array args = {}, const std::string& id = "sa1") {
    return call("subAgent", {"user_S1", id}, action, std::move(args));
  }
  std::string status(const std::string& id = "sa1") {
    auto s = agent("getStatus", {}, id);
    return s.ok() ? s->find("status")->as_string() : "?";
  }
  Array progress_calls() {
    auto r = call("growAgent", {"user_S1"}, "getCalls");
    return r.ok() ? r->as_array() : Array{};
  }

  fakes::OpenCodeFake oc_;
};

TEST_F(SubAgentTest, StartOpensOneSessionSendsThePromptOnceAndCompletesWithTheReply) {
  auto s = agent("start", {obj({{"task", "write the tests"}, {"parent", "tool-1"}})});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->find("subAgentId")->as_string(), "sa1");
  EXPECT_EQ(s->find("status")->as_string(), "running");
  const std::string sid = s->find("sessionId")->as_string();
  ASSERT_TRUE(eventually([&] { return status() == "completed"; }));
  auto st = agent("getStatus");
  EXPECT_EQ(st->find("result")->as_string(), "done: write the tests");
  EXPECT_EQ(oc_.sessions_created(), 1);
  EXPECT_EQ(oc_.messages_for(sid), 1);
  EXPECT_EQ(oc_.prompts(sid), std::vector<std::string>{"write the tests"});
  // The row follows the status (mirrored right after it).
  EXPECT_TRUE(eventually([&] {
    return count("SELECT count(*) AS n FROM opencode_sessions WHERE id = $1 AND user_id = 'user_S1' AND status = 'idle'",
                 {sid}) == 1;
  }));
  EXPECT_EQ(count("SELECT count(*) AS n FROM user_stacks WHERE user_id = 'user_S1' AND status = 'running'"), 1);
}

TEST_F(SubAgentTest, ProgressReachesTheOwningGrowAgentInOrder) {
  oc_.reply_delay(200ms);
  auto s = agent("start", {obj({{"task", "stream it"}, {"parent", "tool-7"}})});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(eventually([&] { return status() == "completed"; }));
  ASSERT_TRUE(eventually([&] {
    auto calls = progress_calls();
    return !calls.empty() && calls.back().find("type")->as_string() == "completed";
  }));
  std::vector<std::string> types;
  for (const auto& c : progress_calls()) {
    types.push_back(c.find("type")->as_string());
    EXPECT_EQ(c.find("subAgentId")->as_string(), "sa1");
    EXPECT_EQ(c.find("parent")->as_string(), "tool-7");
  }
  ASSERT_GE(types.size(), 2u);
  EXPECT_NE(std::find(types.begin(), types.end(), "message.part.updated"), types.end());
  EXPECT_EQ(types.back(), "completed");
}

TEST_F(SubAgentTest, AStartDeliveredTwiceReachesOpenCodeOnce) {
  oc_.reply_delay(300ms);
  auto first = agent("start", {obj({{"task", "once"}})});
  auto second = agent("start", {obj({{"task", "once"}})});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->find("duplicate")->as_bool());
  EXPECT_EQ(second->find("sessionId")->as_string(), first->find("sessionId")->as_string());
  ASSERT_TRUE(eventually([&] { return status() == "completed"; }));
  EXPECT_EQ(oc_.sessions_created(), 1);
  EXPECT_EQ(oc_.messages_for(first->find("sessionId")->as_string()), 1);
}

TEST_F(SubAgentTest, AKillWhileThePromptRunsNeitherResendsNorLosesTheResult) {
  oc_.reply_delay(3s);
  auto s = agent("start", {obj({{"task", "long job"}})});
  ASSERT_TRUE(s.ok());
  const std::string sid = s->find("sessionId")->as_string();
  ASSERT_TRUE(eventually([&] { return oc_.messages_for(sid) == 1; }));
  stop_node();  // kill -9 while OpenCode works on the prompt
  start_node();
  ASSERT_TRUE(eventually([&] { return status() == "completed"; }, 20s));
  EXPECT_EQ(agent("getStatus")->find("result")->as_string(), "done: long job");
  EXPECT_EQ(oc_.messages_for(sid), 1);
  EXPECT_EQ(oc_.sessions_created(), 1);
}

TEST_F(SubAgentTest, AKillBeforeThePromptWasSentSendsItOnceAfterRestart) {
  oc_.hang_next(0);
  auto s = agent("start", {obj({{"task", "after restart"}})});
  ASSERT_TRUE(s.ok());
  const std::string sid = s->find("sessionId")->as_string();
  stop_node();  // possibly before sendPrompt ran
  start_node();
  ASSERT_TRUE(eventually([&] { return status() == "completed"; }, 20s));
  EXPECT_EQ(oc_.messages_for(sid), 1);
}

TEST_F(SubAgentTest, AStartCutByAKillIsTakenUpByTheNextStartWithOneSession) {
  oc_.hang_next(1);  // start's session lookup never answers
  const std::string id = node_->get_or_create("subAgent", {"user_S1", "sa1"});
  asio::co_spawn(node_->io(), node_->rt().call_action(id, "start", {obj({{"task", "resume me"}})}, Value()),
                 asio::detached);
  ASSERT_TRUE(eventually([&] { return oc_.http().requests("GET", "/session").size() == 1; }));
  stop_node();
  start_node();
  EXPECT_EQ(status(), "starting");
  auto s = agent("start", {obj({{"task", "resume me"}})});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_FALSE(s->find("duplicate")->as_bool());
  ASSERT_TRUE(eventually([&] { return status() == "completed"; }));
  EXPECT_EQ(oc_.sessions_created(), 1);
  EXPECT_EQ(oc_.messages_for(s->find("sessionId")->as_string()), 1);
}

TEST_F(SubAgentTest, CancelAbortsTheSession) {
  oc_.reply_delay(5s);
  auto s = agent("start", {obj({{"task", "never mind"}})});
  ASSERT_TRUE(s.ok());
  auto c = agent("cancel");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->find("status")->as_string(), "cancelled");
  EXPECT_EQ(oc_.http().requests("POST", "/session/" + s->find("sessionId")->as_string() + "/abort").size(), 1u);
}

TEST_F(SubAgentTest, WithoutARuntimeConfiguredStartFailsClearly) {
  config_.erase("OPENCODE_URL");
  auto s = agent("start", {obj({{"task", "x"}})});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().qualified(), "sandbox.not_configured");
}

}  // namespace
}  // namespace anvil::growqr
