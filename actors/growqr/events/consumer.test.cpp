// The Redis stream consumer: XACK only after record or dead letter (D3, D4),
// redelivery after a consumer dies between record and XACK (D5), Redis going
// away and back, and the count invariant messages in = recorded + dead-lettered.
#include "actors/growqr/events/events_test_support.hpp"

using namespace anvil;
using namespace anvil::growqr;
using namespace anvil::growqr::testing;

using StreamConsumer = EventsTest;

namespace {
std::string text(const Value& v) { return json::dump(v); }
}  // namespace

TEST_F(StreamConsumer, ADuplicateViaTheStreamLeavesOneRowAndOneMissionEffect) {
  boot();
  start_consumer(consumer("c1"));
  Value ev = grow_event("ev-s-dup", "u1", "interview-to-offer", "m1");
  ASSERT_TRUE(xadd(text(ev)).ok());
  ASSERT_TRUE(xadd(text(ev)).ok());
  ASSERT_TRUE(eventually([&] { return status_of("ev-s-dup") == "processed" && pending_count() == 0; }));
  // And once more over HTTP.
  EXPECT_TRUE(post_event(ev).find("duplicate")->as_bool());
  EXPECT_EQ(count("SELECT count(*) FROM grow_events"), 1);
  Value stats = mission_stats("testMission", "u1", "m1");
  EXPECT_EQ(stats.find("calls")->as_int(), 1);
  EXPECT_EQ(stats.find("effects")->as_int(), 1);
}

TEST_F(StreamConsumer, PoisonMessagesGoToTheDlqStreamAndTableAndAreAcknowledged) {
  boot();
  start_consumer(consumer("c1"));
  ASSERT_TRUE(xadd("{not json").ok());
  ASSERT_TRUE(xadd(text(obj({{"id", "x"}, {"userId", "u1"}}))).ok());  // no type
  ASSERT_TRUE(xadd_fields({{"other", "field"}}).ok());                   // no `event`
  ASSERT_TRUE(xadd(text(grow_event("ev-good", "u1"))).ok());
  ASSERT_TRUE(eventually([&] { return count("SELECT count(*) FROM grow_events_dlq") == 3 && pending_count() == 0; }));
  EXPECT_EQ(status_of("ev-good") == "processed" || status_of("ev-good") == "pending", true);
  EXPECT_EQ(stream_len(dlq_stream_), 3);
  auto dl = rows("SELECT raw, error, error_code, attempts, stream, dlq_stream_id FROM grow_events_dlq ORDER BY id");
  EXPECT_EQ(dl[0].find("raw")->as_string(), "{not json");
  EXPECT_EQ(dl[0].find("error_code")->as_string(), "event.invalid");
  EXPECT_EQ(dl[0].find("attempts")->as_int(), 1);
  EXPECT_EQ(dl[0].find("stream")->as_string(), stream_);
  EXPECT_TRUE(dl[0].find("dlq_stream_id")->is_string());
  EXPECT_NE(dl[1].find("error")->as_string().find("`type`"), std::string::npos);
  EXPECT_NE(dl[2].find("raw")->as_string().find("other"), std::string::npos);
  EXPECT_EQ(count("SELECT count(*) FROM grow_events"), 1);
}

TEST_F(StreamConsumer, ARecordedButUnacknowledgedMessageIsClaimedByAnotherConsumerWithOneEffect) {
  boot();
  auto c1 = consumer("dies");
  c1.stop_after_records_without_ack = 1;
  auto died = start_consumer(c1);
  Value ev = grow_event("ev-kill", "u1", "interview-to-offer", "m1");
  ASSERT_TRUE(xadd(text(ev)).ok());
  ASSERT_EQ(died.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(died.get().ok());
  EXPECT_EQ(pending_count(), 1);  // recorded, never acknowledged
  EXPECT_EQ(count("SELECT count(*) FROM grow_events"), 1);

  auto c2 = consumer("survivor");
  c2.claim_idle = 300ms;
  start_consumer(c2);
  ASSERT_TRUE(eventually([&] { return pending_count() == 0; }));
  ASSERT_TRUE(eventually([&] { return status_of("ev-kill") == "processed"; }));
  EXPECT_EQ(count("SELECT count(*) FROM grow_events"), 1);
  Value stats = mission_stats("testMission", "u1", "m1");
  EXPECT_EQ(stats.find("calls")->as_int(), 1);
  EXPECT_EQ(stats.find("effects")->as_int(), 1);
  EXPECT_EQ(count("SELECT count(*) FROM grow_events_dlq"), 0);
}

TEST_F(StreamConsumer, ARecordFailureIsRetriedAndDeadLetteredAtTheDeliveryBudget) {
  boot();
  // Postgres refuses some inserts: always for `ev-never`, twice for `ev-twice`
  // (counted by a sequence: nextval survives the failed transaction's rollback).
  rows("CREATE SEQUENCE twice_attempts");
  rows(R"(CREATE FUNCTION refuse_some() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF NEW.dedupe_key = 'ev-never' THEN RAISE EXCEPTION 'injected failure'; END IF;
            IF NEW.dedupe_key = 'ev-twice' AND nextval('twice_attempts') <= 2 THEN
              RAISE EXCEPTION 'injected transient failure';
            END IF;
            RETURN NEW;
          END $$)");
  rows("CREATE TRIGGER refuse_some BEFORE INSERT ON grow_events FOR EACH ROW EXECUTE FUNCTION refuse_some()");
  start_consumer(consumer("c1"));
  ASSERT_TRUE(xadd(text(grow_event("ev-never", "u1"))).ok());
  ASSERT_TRUE(xadd(text(grow_event("ev-twice", "u1"))).ok());
  ASSERT_TRUE(eventually([&] { return count("SELECT count(*) FROM grow_events_dlq") == 1 && pending_count() == 0; }));
  auto dl = rows("SELECT raw, error, attempts FROM grow_events_dlq");
  EXPECT_EQ(dl[0].find("attempts")->as_int(), 5);
  EXPECT_NE(dl[0].find("error")->as_string().find("injected failure"), std::string::npos);
  EXPECT_NE(dl[0].find("raw")->as_string().find("ev-never"), std::string::npos);
  EXPECT_EQ(stream_len(dlq_stream_), 1);
  // The transient one went through on its third delivery, once.
  EXPECT_EQ(count("SELECT count(*) FROM grow_events WHERE dedupe_key = 'ev-twice'"), 1);
  EXPECT_EQ(count("SELECT last_value FROM twice_attempts"), 3);
}

TEST_F(StreamConsumer, RedisGoingAwayMidStreamLosesNothing) {
  if (std::system("command -v redis-server >/dev/null 2>&1") != 0) {
    if (pg::testing::in_ci()) FAIL() << "redis-server is not installed";
    GTEST_SKIP() << "redis-server is not installed";
  }
  OwnRedis server;
  ASSERT_TRUE(server.start());
  boot({}, server.url());
  start_consumer(consumer("c1"));
  auto add = [&](int i) {
    // The producer retries until Redis takes the entry.
    for (int tries = 0; tries < 500; ++tries) {
      if (xadd(text(grow_event("ev-r" + std::to_string(i), "u" + std::to_string(i % 3)))).ok()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(add(i));
  server.kill();
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(server.start());
  for (int i = 30; i < 60; ++i) ASSERT_TRUE(add(i));
  ASSERT_TRUE(eventually([&] { return count("SELECT count(*) FROM grow_events") == 60 && pending_count() == 0; },
                         30s))
      << count("SELECT count(*) FROM grow_events") << " recorded, " << pending_count() << " pending";
  EXPECT_EQ(count("SELECT count(*) FROM grow_events_dlq"), 0);
}

TEST_F(StreamConsumer, MessagesInEqualRecordedPlusDeadLetteredEachRecordedOnce) {
  boot();
  start_consumer(consumer("c1"));
  start_consumer(consumer("c2"));  // two consumers in the group share the stream
  const int kDistinct = 450, kDuplicates = 45, kPoison = 5;
  std::vector<std::string> texts;
  for (int i = 0; i < kDistinct; ++i) {
    std::optional<std::string> type, instance;
    if (i % 5 == 0) {
      type = "interview-to-offer";
      instance = "m" + std::to_string(i % 4);
    }
    texts.push_back(text(grow_event("ev-n" + std::to_string(i), "u" + std::to_string(i % 10), type, instance)));
  }
  for (int i = 0; i < kDuplicates; ++i) texts.push_back(texts[static_cast<size_t>(i * 7)]);
  for (int i = 0; i < kPoison; ++i) texts.push_back("poison-" + std::to_string(i));
  for (const auto& t : texts) ASSERT_TRUE(xadd(t).ok());
  ASSERT_EQ(texts.size(), 500u);
  ASSERT_TRUE(eventually(
      [&] {
        return count("SELECT count(*) FROM grow_events") + count("SELECT count(*) FROM grow_events_dlq") ==
                   kDistinct + kPoison &&
               pending_count() == 0;
      },
      60s))
      << count("SELECT count(*) FROM grow_events") << " recorded, " << pending_count() << " pending";
  EXPECT_EQ(count("SELECT count(*) FROM grow_events"), kDistinct);
  EXPECT_EQ(count("SELECT count(*) FROM grow_events_dlq"), kPoison);
  ASSERT_TRUE(eventually([&] { return count("SELECT count(*) FROM grow_events WHERE processing_status = 'processed'") == kDistinct; },
                         60s));
  int64_t effects = 0, calls = 0;
  for (int u = 0; u < 10; ++u)
    for (int m = 0; m < 4; ++m) {
      Value s = mission_stats("testMission", "u" + std::to_string(u), "m" + std::to_string(m));
      effects += s.find("effects")->as_int();
      calls += s.find("calls")->as_int();
    }
  EXPECT_EQ(effects, kDistinct / 5);
  EXPECT_EQ(calls, kDistinct / 5);
}

TEST_F(StreamConsumer, PostgresGoingAwayMidStreamIsRetriedAndLosesNothing) {
  TcpProxy proxy(postgres_port());
  pg::PoolOptions po;
  po.url = schema_url_via(proxy.port());
  po.connect_timeout = 1s;
  app_pool_ = std::make_unique<pg::Pool>(po);
  boot();
  auto c = consumer("c1");
  c.max_deliveries = 100;  // a budget that outlasts the outage
  start_consumer(c);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(xadd(text(grow_event("ev-p" + std::to_string(i), "u1"))).ok());
  ASSERT_TRUE(eventually([&] { return count("SELECT count(*) FROM grow_events") == 10 && pending_count() == 0; }));

  proxy.stop();
  for (int i = 10; i < 20; ++i) ASSERT_TRUE(xadd(text(grow_event("ev-p" + std::to_string(i), "u2"))).ok());
  std::this_thread::sleep_for(1500ms);
  EXPECT_GT(pending_count(), 0);  // read, not recorded, so not acknowledged
  EXPECT_EQ(count("SELECT count(*) FROM grow_events"), 10);

  proxy.start();
  ASSERT_TRUE(eventually([&] { return count("SELECT count(*) FROM grow_events") == 20 && pending_count() == 0; },
                         30s))
      << count("SELECT count(*) FROM grow_events") << " recorded, " << pending_count() << " pending";
  ASSERT_TRUE(eventually(
      [&] { return count("SELECT count(*) FROM grow_events WHERE processing_status = 'processed'") == 20; }, 30s));
  EXPECT_EQ(count("SELECT count(*) FROM grow_events_dlq"), 0);
}
