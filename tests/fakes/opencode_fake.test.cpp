#include "tests/fakes/opencode_fake.hpp"

#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fakes/fake_client.hpp"

namespace anvil::fakes {
namespace {

using client::BlockingClient;

const net::Headers kJson = {{"Content-Type", "application/json"}};

Value prompt(const std::string& text) { return obj({{"parts", Array{obj({{"type", "text"}, {"text", text}})}}}); }

TEST(OpenCodeFake, HealthSessionAndMessageAnswerAndCountPrompts) {
  OpenCodeFake oc;
  BlockingClient c;
  EXPECT_EQ(c.send("GET", oc.url() + "/global/health").json["healthy"].as_bool(), true);
  auto s = c.send("POST", oc.url() + "/session", json::dump(obj({{"title", "t1"}})), kJson);
  ASSERT_EQ(s.status, 200);
  const std::string id = s.json["id"].as_string();
  EXPECT_EQ(s.json["title"].as_string(), "t1");
  auto m = c.send("POST", oc.url() + "/session/" + id + "/message", json::dump(prompt("write tests")), kJson);
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.json["info"]["role"].as_string(), "assistant");
  EXPECT_EQ(m.json["parts"].as_array()[0]["text"].as_string(), "done: write tests");
  EXPECT_EQ(oc.messages_for(id), 1);
  auto list = c.send("GET", oc.url() + "/session/" + id + "/message");
  ASSERT_EQ(list.json.as_array().size(), 2u);
  EXPECT_EQ(c.send("POST", oc.url() + "/session/nope/message", json::dump(prompt("x")), kJson).status, 404);
}

TEST(OpenCodeFake, TheEventStreamCarriesTheMessageEventsOfASessionUntilIdle) {
  OpenCodeFake oc;
  oc.reply_delay(std::chrono::milliseconds(100));
  BlockingClient c;
  std::mutex mu;
  std::vector<std::string> types;
  auto done = c.stream(oc.url() + "/event", [&](const net::SseEvent& e) {
    auto v = json::parse(e.data, false);
    std::lock_guard lk(mu);
    if (v.ok()) types.push_back(v->find("type")->as_string());
  });
  for (int i = 0; i < 100 && oc.event_streams_opened() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const std::string id = c.send("POST", oc.url() + "/session", "{}", kJson).json["id"].as_string();
  ASSERT_EQ(c.send("POST", oc.url() + "/session/" + id + "/message", json::dump(prompt("go")), kJson).status, 200);
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lk(mu);
      if (!types.empty() && types.back() == "session.idle") break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  oc.end_event_streams();
  EXPECT_TRUE(done.get().ok());
  std::lock_guard lk(mu);
  EXPECT_EQ(types, (std::vector<std::string>{"server.connected", "message.updated", "message.part.updated",
                                             "message.part.updated", "message.updated", "session.idle"}));
}

TEST(OpenCodeFake, InjectedFailuresAndUnhealthyAnswerErrors) {
  OpenCodeFake oc;
  BlockingClient c;
  oc.fail_next(1, 500);
  EXPECT_EQ(c.send("POST", oc.url() + "/session", "{}", kJson).status, 500);
  EXPECT_EQ(oc.sessions_created(), 0);
  oc.healthy(false);
  EXPECT_EQ(c.send("GET", oc.url() + "/global/health").status, 503);
}

}  // namespace
}  // namespace anvil::fakes
