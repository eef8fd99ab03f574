// growAgent against the Anthropic Messages API fake: the tool-use loop, the
// streamed runtime events, retries of an overloaded model, the limits, and a
// kill -9 in the middle of a loop. memoryActor and subAgent are small
// stand-ins here (their own tests cover them); the node is real (RocksDB).
#include <gtest/gtest.h>

#include <future>
#include <mutex>

#include "actors/growqr/agent/grow_agent.hpp"
#include "base/value/json.hpp"
#include "runtime/test_node.hpp"
#include "tests/fakes/anthropic_fake.hpp"

namespace anvil::growqr {
namespace {

using fakes::AnthropicFake;
using Block = AnthropicFake::Block;

std::string str(const Value& v, std::string_view k) {
  const Value* f = v.find(k);
  return f && f->is_string() ? f->as_string() : "";
}
int64_t num(const Value& v, std::string_view k) {
  const Value* f = v.find(k);
  return f && f->is_int() ? f->as_int() : 0;
}

// memoryActor stand-in: files in state; "slow.md" takes 1.5 s to commit.
ActorDefinition memory_stand_in() {
  ActorDefinition def("memoryActor");
  def.initial_state(obj({{"files", Object{}}, {"listCalls", 0}, {"commitStarted", 0}, {"commitDone", 0}}))
      .async_action("commitMemory",
                    [](ActionContext& c, Array args) -> Task<Result<Value>> {
                      const std::string path = args.at(0).as_string(), content = args.at(1).as_string();
                      c.mutate_state()["commitStarted"] = num(c.state(), "commitStarted") + 1;
                      if (path == "slow.md") {
                        auto slept = co_await c.sleep_for(std::chrono::milliseconds(1500));
                        if (!slept.ok()) co_return slept.error();
                      }
                      Value& s = c.mutate_state();
                      s["files"][path] = content;
                      s["commitDone"] = num(s, "commitDone") + 1;
                      co_return obj({{"path", path}, {"sha", "abc"}});
                    })
      .action("readMemory",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                const Value* f = c.state().find("files")->find(args.at(0).as_string());
                if (!f) return make_error("memory", "not_found", "No memory file `" + args.at(0).as_string() + "`.");
                return *f;
              })
      .action("listMemory",
              [](ActionContext& c, const Array&) -> Result<Value> {
                Array paths;
                for (const auto& [k, v] : c.state().find("files")->as_object()) paths.emplace_back(k);
                c.mutate_state()["listCalls"] = num(c.state(), "listCalls") + 1;
                return paths;
              })
      .action("getStats", [](ActionContext& c, const Array&) -> Result<Value> { return c.state(); });
  return def;
}

// subAgent stand-in: records the task and reports progress to its growAgent.
ActorDefinition sub_agent_stand_in() {
  ActorDefinition def("subAgent");
  def.initial_state(obj({{"starts", 0}}))
      .action("start", [](ActionContext& c, const Array& args) -> Result<Value> {
        c.mutate_state()["starts"] = num(c.state(), "starts") + 1;
        c.mutate_state()["task"] = *args.at(0).find("task");
        c.call_actor("growAgent", {c.key()[0]}, "onSubAgentProgress",
                     {obj({{"subAgentId", c.key()[1]}, {"type", "started"}, {"data", obj({{"task", *args.at(0).find("task")}})}})});
        return obj({{"subAgentId", c.key()[1]}, {"status", "started"}});
      });
  return def;
}

// Collects the runtime events a subscribed connection receives.
class EventLog : public ConnSink {
 public:
  void send_event(const std::string& name, const Array& args) override {
    std::lock_guard lock(mu_);
    if (name == "runtimeEvent" && !args.empty()) events_.push_back(args[0]);
  }
  void close(uint16_t, const std::string&) override {}
  std::vector<std::string> types() {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& e : events_) out.push_back(str(e, "type"));
    return out;
  }
  std::vector<Value> events() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::vector<Value> events_;
};

class GrowAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anvil::testing::temp_dir("grow-agent");
    registry_.add(grow_agent());
    registry_.add(user_actor());
    registry_.add(memory_stand_in());
    registry_.add(sub_agent_stand_in());
    config_ = {{"ANTHROPIC_BASE_URL", llm_.url()},
               {"ANTHROPIC_API_KEY", "test-key"},
               {"GROWQR_AGENT_MODEL", "claude-test"}};
    start();
  }
  void TearDown() override {
    node_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start() {
    node_ = std::make_unique<anvil::testing::Node>(dir_, registry_);
    net::ClientOptions http;
    node_->enable_http(http);
    Services s = node_->rt().services();
    s.config = std::make_shared<const ConfigMap>(config_.begin(), config_.end());
    node_->rt().set_services(s);
  }
  std::string agent(const std::string& user = "user-1") { return node_->get_or_create("growAgent", {user}); }
  Result<Value> chat(const std::string& id, const std::string& text, Value opts = Value()) {
    Array args{Value(text)};
    if (!opts.is_null()) args.push_back(opts);
    return node_->call(id, "chat", std::move(args));
  }
  std::shared_ptr<EventLog> subscribe(const std::string& id) {
    auto log = std::make_shared<EventLog>();
    CallResult conn = node_->run(node_->rt().connect(id, Value(), log));
    EXPECT_TRUE(conn.output.ok());
    std::vector<ConnCall> calls{ConnCall{true, true, "runtimeEvent", {}}};
    auto pending = node_->run(node_->rt().conn_calls(id, conn.output->as_string(), std::move(calls)));
    (void)node_->run(node_->rt().finish(std::move(pending)));
    return log;
  }

  AnthropicFake llm_;
  Registry registry_;
  std::map<std::string, std::string> config_;
  std::string dir_;
  std::unique_ptr<anvil::testing::Node> node_;
};

TEST_F(GrowAgentTest, AChatWithoutToolsAnswersTheModelsTextAndSendsTheMessagesApiRequest) {
  llm_.rule("hello", {Block::text_block("Hi there, how can I help?")});
  auto r = chat(agent(), "hello agent");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(str(*r, "reply"), "Hi there, how can I help?");
  EXPECT_EQ(*r->find("toolCalls"), Value(Array{}));

  auto reqs = llm_.server().requests("POST", "/v1/messages");
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].header("x-api-key").value_or(""), "test-key");
  EXPECT_EQ(reqs[0].header("anthropic-version").value_or(""), "2023-06-01");
  Value body = llm_.requests().at(0);
  EXPECT_EQ(str(body, "model"), "claude-test");
  EXPECT_EQ(*body.find("stream"), Value(true));
  ASSERT_TRUE(body.find("tools")->is_array());
  std::vector<std::string> tools;
  for (const auto& t : body.find("tools")->as_array()) tools.push_back(str(t, "name"));
  EXPECT_EQ(tools, (std::vector<std::string>{"commit_memory", "read_memory", "list_memory", "spawn_sub_agent"}));
  EXPECT_EQ(body.find("messages")->as_array().size(), 1u);
}

TEST_F(GrowAgentTest, AToolCallRunsOnTheMemoryActorAndTheModelGetsItsResult) {
  llm_.rule("remember", {Block::text_block("Saving."),
                         Block::tool("commit_memory", obj({{"path", "goals.md"}, {"content", "# Goals\nShip Anvil"}}))});
  llm_.rule("tool_result:commit_memory", {Block::text_block("Saved your goals.")});
  const std::string id = agent();
  auto r = chat(id, "please remember my goals");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(str(*r, "reply"), "Saved your goals.");
  EXPECT_EQ(*r->find("toolCalls"),
            Value(Array{obj({{"name", "commit_memory"},
                             {"input", obj({{"path", "goals.md"}, {"content", "# Goals\nShip Anvil"}})}})}));

  const std::string mem = node_->get_or_create("memoryActor", {"user-1"});
  auto stats = node_->call(mem, "getStats");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(*stats->find("files")->find("goals.md"), Value("# Goals\nShip Anvil"));

  // The second model request carries the tool_use and its tool_result.
  auto reqs = llm_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const Array& msgs = reqs[1].find("messages")->as_array();
  ASSERT_EQ(msgs.size(), 3u);
  const Value& tool_use = msgs[1].find("content")->as_array().at(1);
  const Value& result = msgs[2].find("content")->as_array().at(0);
  EXPECT_EQ(str(result, "type"), "tool_result");
  EXPECT_EQ(str(result, "tool_use_id"), str(tool_use, "id"));
  EXPECT_NE(str(result, "content").find("goals.md"), std::string::npos);
  EXPECT_EQ(result.find("is_error"), nullptr);
}

TEST_F(GrowAgentTest, AFailingToolIsReportedToTheModelAsAnErrorResult) {
  // Rules match in order: the tool_result rule first ("read" is in its key too).
  llm_.rule("tool_result:read_memory", {Block::text_block("I could not find it: {{result}}")});
  llm_.rule("read my", {Block::tool("read_memory", obj({{"path", "missing.md"}}))});
  auto r = chat(agent(), "read my notes");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(str(*r, "reply").find("memory.not_found"), std::string::npos) << str(*r, "reply");
  const auto reqs = llm_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const Value result = reqs[1].find("messages")->as_array().at(2).find("content")->as_array().at(0);
  ASSERT_NE(result.find("is_error"), nullptr);
  EXPECT_EQ(*result.find("is_error"), Value(true));
}

TEST_F(GrowAgentTest, SubscribersReceiveTextDeltasAndToolEventsWhileTheLoopRuns) {
  llm_.rule("remember", {Block::tool("commit_memory", obj({{"path", "a.md"}, {"content", "x"}}))});
  llm_.rule("tool_result:commit_memory", {Block::text_block("Saved it for you.")});
  const std::string id = agent();
  auto log = subscribe(id);
  auto r = chat(id, "remember this", obj({{"chatId", "c-events"}}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  // Give the last broadcast a moment to arrive (events are not part of the reply).
  for (int i = 0; i < 100 && (log->types().empty() || log->types().back() != "chat.finished"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto types = log->types();
  std::vector<std::string> without_deltas;
  std::string streamed;
  for (const auto& e : log->events()) {
    EXPECT_EQ(str(e, "chatId"), "c-events");
    if (str(e, "type") == "text.delta") streamed += str(e, "text");
    else without_deltas.push_back(str(e, "type"));
  }
  EXPECT_EQ(without_deltas, (std::vector<std::string>{"chat.started", "tool.started", "tool.finished", "chat.finished"}));
  EXPECT_EQ(streamed, "Saved it for you.");
  EXPECT_GE(std::count(types.begin(), types.end(), "text.delta"), 2);
}

TEST_F(GrowAgentTest, AnOverloadedModelIsRetriedUntilItAnswers) {
  llm_.rule("hi", {Block::text_block("Hello!")});
  llm_.fail_next(2, 529);
  auto r = chat(agent(), "hi");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(str(*r, "reply"), "Hello!");
  EXPECT_EQ(llm_.server().requests("POST", "/v1/messages").size(), 3u);
}

TEST_F(GrowAgentTest, AModelThatStaysDownEndsTheChatWithAnErrorAndTheAgentStillWorks) {
  llm_.fail_next(1000, 500);
  auto r = chat(agent(), "hi");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().group, "outbound") << r.error().qualified();
  llm_.fail_next(0, 0);
  llm_.rule("again", {Block::text_block("Back.")});
  auto again = chat(agent(), "again");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(str(*again, "reply"), "Back.");
  // The failed chat's user turn is still in the history, joined with this one.
  const Array msgs = llm_.requests().back().find("messages")->as_array();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].find("content")->as_array().size(), 2u);
}

// Every tool_result the model gets answers a tool_use of the turn before it.
void expect_well_formed(const Array& msgs) {
  ASSERT_FALSE(msgs.empty());
  EXPECT_EQ(str(msgs[0], "role"), "user");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Value* content = msgs[i].find("content");
    if (!content->is_array()) continue;
    for (const Value& b : content->as_array()) {
      if (str(b, "type") != "tool_result") continue;
      ASSERT_GT(i, 0u) << "a tool_result opens the history";
      bool found = false;
      for (const Value& pb : msgs[i - 1].find("content")->as_array())
        found = found || (str(pb, "type") == "tool_use" && str(pb, "id") == str(b, "tool_use_id"));
      EXPECT_TRUE(found) << "orphaned tool_result " << str(b, "tool_use_id");
    }
  }
}

TEST_F(GrowAgentTest, ATrimmedHistoryNeverStartsWithAnOrphanedToolResult) {
  config_["GROWQR_AGENT_MAX_ITERATIONS"] = "2";
  config_["GROWQR_AGENT_HISTORY"] = "3";
  node_.reset();
  start();
  llm_.rule("tool_result:list_memory", {Block::tool("list_memory", Object{})});
  llm_.rule("loop", {Block::tool("list_memory", Object{})});
  llm_.rule("next", {Block::text_block("Fine.")});
  const std::string id = agent();
  ASSERT_TRUE(chat(id, "loop please").ok());
  auto r = chat(id, "next one");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(str(*r, "reply"), "Fine.");
  for (const Value& req : llm_.requests()) expect_well_formed(req.find("messages")->as_array());
}

TEST_F(GrowAgentTest, AStreamCutMidMessageIsRetried) {
  llm_.rule("hi", {Block::text_block("Complete answer.")});
  llm_.drop_stream_next(1);
  auto r = chat(agent(), "hi");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(str(*r, "reply"), "Complete answer.");
  EXPECT_EQ(llm_.request_count(), 2u);
}

TEST_F(GrowAgentTest, TheLoopStopsAtTheIterationLimit) {
  config_["GROWQR_AGENT_MAX_ITERATIONS"] = "3";
  node_.reset();
  start();
  llm_.rule("loop", {Block::text_block("Looking."), Block::tool("list_memory", Object{})});
  llm_.rule("tool_result:list_memory", {Block::text_block("Looking again."), Block::tool("list_memory", Object{})});
  auto r = chat(agent(), "loop forever");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->find("toolCalls")->as_array().size(), 3u);
  EXPECT_EQ(str(*r, "reply"), "Looking again.");
  EXPECT_EQ(llm_.request_count(), 3u);
}

TEST_F(GrowAgentTest, SpawnSubAgentStartsAWorkerAndItsProgressIsRebroadcast) {
  llm_.rule("delegate", {Block::tool("spawn_sub_agent", obj({{"task", "research salaries"}}))});
  llm_.rule("tool_result:spawn_sub_agent", {Block::text_block("A worker is on it.")});
  const std::string id = agent();
  auto log = subscribe(id);
  auto r = chat(id, "delegate this");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(str(*r, "reply"), "A worker is on it.");
  Value progress;
  for (int i = 0; i < 200 && progress.is_null(); ++i) {
    for (const auto& e : log->events())
      if (str(e, "type") == "subAgent.progress") progress = e;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(progress.is_object());
  EXPECT_EQ(str(progress, "event"), "started");
  EXPECT_EQ(str(*progress.find("data"), "task"), "research salaries");
  EXPECT_EQ(str(progress, "subAgentId").rfind("sa-", 0), 0u);
}

TEST_F(GrowAgentTest, TheSameChatIdIsAnsweredOnceAndTheHistoryCarriesOverToTheNextChat) {
  llm_.rule("first", {Block::text_block("One.")});
  llm_.rule("second", {Block::text_block("Two.")});
  const std::string id = agent();
  auto a = chat(id, "first", obj({{"chatId", "m-1"}}));
  auto again = chat(id, "first", obj({{"chatId", "m-1"}}));
  ASSERT_TRUE(a.ok() && again.ok());
  EXPECT_EQ(*a, *again);
  EXPECT_EQ(llm_.request_count(), 1u);
  auto b = chat(id, "second");
  ASSERT_TRUE(b.ok());
  const Array msgs = llm_.requests().back().find("messages")->as_array();
  ASSERT_EQ(msgs.size(), 3u);  // first, One., second
  EXPECT_EQ(str(msgs[0], "content"), "first");
  EXPECT_EQ(str(msgs[2], "content"), "second");
}

TEST_F(GrowAgentTest, BadMessagesAreRefusedWithAClearError) {
  const std::string id = agent();
  for (Array args : {Array{}, Array{Value(5)}, Array{Value("   ")}, Array{Value(std::string(40'000, 'x'))}}) {
    auto r = node_->call(id, "chat", args);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().qualified(), "agent.invalid_message");
  }
  EXPECT_EQ(llm_.request_count(), 0u);
}

TEST_F(GrowAgentTest, WithoutAnApiKeyTheChatFailsAsNotConfigured) {
  config_.erase("ANTHROPIC_API_KEY");
  node_.reset();
  start();
  auto r = chat(agent(), "hi");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "agent.llm_not_configured");
}

TEST_F(GrowAgentTest, AKillMidLoopResumesWithoutRerunningCompletedToolCalls) {
  llm_.rule("plan", {Block::tool("list_memory", Object{})});
  llm_.rule("tool_result:list_memory", {Block::tool("commit_memory", obj({{"path", "slow.md"}, {"content", "s"}}))});
  llm_.rule("tool_result:commit_memory", {Block::text_block("All done.")});
  const std::string id = agent();
  const std::string mem = node_->get_or_create("memoryActor", {"user-1"});
  // The chat's caller dies with the node; its reply is never read.
  asio::co_spawn(node_->io(),
                 node_->rt().call_action(id, "chat", {Value("plan my week"), obj({{"chatId", "c-crash"}})}, Value()),
                 asio::detached);
  Value stats = node_->wait_for(mem, "getStats", [](const Value& s) { return num(s, "commitStarted") >= 1; });
  ASSERT_EQ(num(stats, "commitStarted"), 1);
  ASSERT_EQ(num(stats, "commitDone"), 0);
  node_.reset();  // kill -9: the slow commit never finished
  start();
  // The workflow resumes on wake: re-runs only the interrupted commit.
  (void)node_->get_or_create("growAgent", {"user-1"});
  Value done;
  for (int i = 0; i < 500; ++i) {
    auto c = node_->call(id, "getChat", {Value("c-crash")});
    if (c.ok() && str(*c, "status") == "done") {
      done = *c;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(done.is_object()) << "the chat did not finish after the restart";
  EXPECT_EQ(str(*done.find("result"), "reply"), "All done.");
  EXPECT_EQ(done.find("result")->find("toolCalls")->as_array().size(), 2u);
  auto after = node_->call(node_->get_or_create("memoryActor", {"user-1"}), "getStats");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(num(*after, "listCalls"), 1) << "a completed tool call ran again";
  EXPECT_EQ(num(*after, "commitDone"), 1);
  EXPECT_EQ(llm_.request_count(), 3u) << "a completed model call ran again";
  // A retried request with the same chat id gets the recorded answer.
  auto retried = chat(id, "plan my week", obj({{"chatId", "c-crash"}}));
  ASSERT_TRUE(retried.ok()) << retried.error().message;
  EXPECT_EQ(str(*retried, "reply"), "All done.");
  EXPECT_EQ(llm_.request_count(), 3u);
}

TEST_F(GrowAgentTest, UserActorForwardsChatToTheUsersGrowAgent) {
  llm_.rule("facade", {Block::text_block("Via the facade.")});
  const std::string user = node_->get_or_create("userActor", {"user-1"});
  auto r = node_->call(user, "chat", {Value("facade please")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(str(*r, "reply"), "Via the facade.");
  auto hist = node_->call(agent(), "getHistory");
  ASSERT_TRUE(hist.ok());
  EXPECT_EQ(hist->as_array().size(), 2u);
}

}  // namespace
}  // namespace anvil::growqr
