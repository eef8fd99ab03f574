// conversationActor and /conversations against real Postgres and the
// Anthropic fake: idempotency per message id, the Postgres mirror, streamed
// deltas, ownership on the routes, and a restart.
#include "actors/growqr/missions/growqr_test_env.hpp"
#include "tests/fakes/anthropic_fake.hpp"

namespace anvil::growqr {
namespace {

using fakes::AnthropicFake;
using Block = AnthropicFake::Block;
using Headers = std::vector<std::pair<std::string, std::string>>;

std::string str(const Value& v, std::string_view k) {
  const Value* f = v.find(k);
  return f && f->is_string() ? f->as_string() : "";
}

class ConversationsTest : public testing::GrowqrTest {
 protected:
  void SetUp() override {
    config_ = {{"ANTHROPIC_BASE_URL", llm_.url()}, {"ANTHROPIC_API_KEY", "k"}, {"CONVERSATION_ACTOR_MODEL", "conv-model"}};
    GrowqrTest::SetUp();
  }
  Headers as(const std::string& user) { return {{"x-user-id", user}, {"content-type", "application/json"}}; }
  std::string create(const std::string& user, const std::string& body = "{}") {
    auto r = request("POST", "/conversations", body, as(user));
    EXPECT_EQ(r.status, 201) << r.raw;
    return str(r.body, "conversationId");
  }

  AnthropicFake llm_;
};

TEST_F(ConversationsTest, AMessageIsAnsweredAndMirroredToPostgres) {
  llm_.rule("salary", {Block::text_block("Ask for the top of the band.")});
  const std::string id = create("u1", R"({"title":"Negotiation"})");
  auto r = request("POST", "/conversations/" + id + "/messages", R"({"messageId":"m1","text":"salary advice?"})", as("u1"));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(str(r.body, "reply"), "Ask for the top of the band.");
  EXPECT_EQ(str(llm_.requests().at(0), "model"), "conv-model");
  auto conv = request("GET", "/conversations/" + id, "", as("u1"));
  ASSERT_EQ(conv.status, 200) << conv.raw;
  EXPECT_EQ(*conv.body.find("streaming"), Value(Array{})) << "nothing is being answered any more";
  EXPECT_TRUE(eventually([&] {
    return count("SELECT count(*) AS n FROM messages WHERE conversation_id = $1::uuid", {Value(id)}) == 2;
  }));
  auto rows = this->rows("SELECT role, content, seq FROM messages WHERE conversation_id = $1::uuid ORDER BY seq", {Value(id)});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(str(rows[0], "role"), "user");
  EXPECT_EQ(str(rows[1], "content"), "Ask for the top of the band.");
  EXPECT_EQ(count("SELECT count(*) AS n FROM grow_conversations WHERE id = $1::uuid AND user_id = 'u1' AND title = "
                  "'Negotiation'",
                  {Value(id)}),
            1);
}

TEST_F(ConversationsTest, ARepeatedMessageIdReturnsTheFirstResultWithoutAskingTheModelAgain) {
  llm_.rule("hello", {Block::text_block("First answer.")});
  const std::string id = create("u1");
  auto a = request("POST", "/conversations/" + id + "/messages", R"({"messageId":"m1","text":"hello"})", as("u1"));
  llm_.clear_rules();
  llm_.rule("hello", {Block::text_block("Second answer.")});
  auto b = request("POST", "/conversations/" + id + "/chat", R"({"messageId":"m1","text":"hello again"})", as("u1"));
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  EXPECT_EQ(str(b.body, "reply"), "First answer.");
  EXPECT_EQ(*b.body.find("seq"), *a.body.find("seq"));
  EXPECT_EQ(llm_.request_count(), 1u);
  auto msgs = request("GET", "/conversations/" + id + "/messages", "", as("u1"));
  EXPECT_EQ(msgs.body.find("messages")->as_array().size(), 2u);
}

TEST_F(ConversationsTest, AMessageWithoutAnIdIsRefused) {
  const std::string id = create("u1");
  auto r = request("POST", "/conversations/" + id + "/messages", R"({"text":"hi"})", as("u1"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(str(r.body, "code"), "message_id_required");
  EXPECT_EQ(llm_.request_count(), 0u);
}

TEST_F(ConversationsTest, AnotherUsersConversationIsNotFound) {
  const std::string id = create("alice");
  auto read = request("GET", "/conversations/" + id, "", as("bob"));
  EXPECT_EQ(read.status, 404);
  auto write = request("POST", "/conversations/" + id + "/messages", R"({"messageId":"x","text":"hi"})", as("bob"));
  EXPECT_EQ(write.status, 404);
  EXPECT_EQ(llm_.request_count(), 0u);
  auto list = request("GET", "/conversations", "", as("bob"));
  EXPECT_EQ(list.body.find("conversations")->as_array().size(), 0u);
  auto mine = request("GET", "/conversations", "", as("alice"));
  EXPECT_EQ(mine.body.find("conversations")->as_array().size(), 1u);
}

TEST_F(ConversationsTest, TheSequenceResumesAfterARestartAndTheHistoryReachesTheModel) {
  llm_.rule("one", {Block::text_block("Reply one.")});
  llm_.rule("two", {Block::text_block("Reply two.")});
  const std::string id = create("u1");
  ASSERT_EQ(request("POST", "/conversations/" + id + "/messages", R"({"messageId":"a","text":"one"})", as("u1")).status, 200);
  stop_node();
  start_node();
  auto r = request("POST", "/conversations/" + id + "/messages", R"({"messageId":"b","text":"two"})", as("u1"));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body.find("seq")->as_int(), 4);
  const Array msgs = llm_.requests().back().find("messages")->as_array();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(str(msgs[1], "content"), "Reply one.");
}

TEST_F(ConversationsTest, AMissionConversationGivesTheModelTheMissionsStage) {
  auto started = request("POST", "/missions/interview-to-offer/start", R"({"missionInstanceId":"mi-1"})", as("u1"));
  ASSERT_EQ(started.status, 202) << started.raw;
  const std::string id = create("u1", R"({"missionInstanceId":"mi-1"})");
  ASSERT_EQ(request("POST", "/conversations/" + id + "/messages", R"({"messageId":"a","text":"what next?"})", as("u1")).status,
            200);
  const std::string system = str(llm_.requests().at(0), "system");
  EXPECT_NE(system.find("mi-1"), std::string::npos) << system;
  EXPECT_NE(system.find("interview-to-offer"), std::string::npos) << system;
}

TEST_F(ConversationsTest, ArchivingKeepsTheConversationReadable) {
  const std::string id = create("u1");
  auto del = request("DELETE", "/conversations/" + id, "", as("u1"));
  ASSERT_EQ(del.status, 200) << del.raw;
  EXPECT_EQ(str(del.body, "status"), "archived");
  EXPECT_EQ(count("SELECT count(*) AS n FROM grow_conversations WHERE id = $1::uuid AND status = 'archived'", {Value(id)}), 1);
}

}  // namespace
}  // namespace anvil::growqr
