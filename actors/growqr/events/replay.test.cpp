// Replay of failed/unresolved events (D6, D8, D16) and DLQ redrive.
#include "actors/growqr/events/events_test_support.hpp"

using namespace anvil;
using namespace anvil::growqr;
using namespace anvil::growqr::testing;

using Replay = EventsTest;

namespace {
Value parse(const AppResponse& r) { return json::parse(r.body, false).value(); }
}  // namespace

TEST_F(Replay, AnUnknownMissionTypeIsUnresolvedUntilRegisteredThenReplayProcessesItOnce) {
  boot();
  post_event(grow_event("ev-late", "u1", "late", "m1"));
  ASSERT_TRUE(eventually([&] { return status_of("ev-late") == "unresolved"; }));
  auto row = rows("SELECT last_error FROM grow_events WHERE dedupe_key = 'ev-late'");
  EXPECT_NE(row[0].find("last_error")->as_string().find("unknown mission type late"), std::string::npos);

  // Replay while still unknown: it stays unresolved (nothing lost, nothing applied).
  auto still = request("POST", "/events/replay", R"({"status":"unresolved"})");
  ASSERT_EQ(still.status, 202) << still.body;
  EXPECT_EQ(parse(still).find("redriven")->as_int(), 1);
  ASSERT_TRUE(eventually([&] { return status_of("ev-late") == "unresolved"; }));
  EXPECT_EQ(mission_stats("testMission", "u1", "m1").find("calls")->as_int(), 0);

  // A dry run lists without changing anything.
  late_type_registered() = true;
  auto dry = request("POST", "/events/replay", R"({"status":"unresolved","dryRun":true})");
  ASSERT_EQ(dry.status, 200);
  EXPECT_EQ(parse(dry).find("matched")->as_int(), 1);
  EXPECT_EQ(parse(dry).find("redriven")->as_int(), 0);
  EXPECT_EQ(status_of("ev-late"), "unresolved");

  auto first = request("POST", "/events/replay", R"({"status":"unresolved"})");
  ASSERT_EQ(first.status, 202);
  EXPECT_EQ(parse(first).find("redriven")->as_int(), 1);
  ASSERT_TRUE(eventually([&] { return status_of("ev-late") == "processed"; }));
  EXPECT_EQ(mission_stats("testMission", "u1", "m1").find("effects")->as_int(), 1);

  // D6: a second replay changes nothing.
  auto second = request("POST", "/events/replay", R"({"status":"unresolved"})");
  EXPECT_EQ(parse(second).find("matched")->as_int(), 0);
  auto again = request("POST", "/events/replay", R"({"status":"failed"})");
  EXPECT_EQ(parse(again).find("matched")->as_int(), 0);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(status_of("ev-late"), "processed");
  Value stats = mission_stats("testMission", "u1", "m1");
  EXPECT_EQ(stats.find("calls")->as_int(), 1);
  EXPECT_EQ(stats.find("effects")->as_int(), 1);
}

TEST_F(Replay, AFailingProjectorMarksTheEventFailedAndReplayCompletesItWithoutADuplicateProjection) {
  max_attempts_ = 2;
  boot();
  // The Q Score projector needs the user mirrored in `users` (foreign key): it fails until then.
  Value ev = grow_event("ev-q", "u-q", "interview-to-offer", "m1",
                        obj({{"qscore", 71.5}, {"sessionId", "s-q"}, {"status", "done"}}));
  post_event(ev);
  ASSERT_TRUE(eventually([&] {
    auto r = rows("SELECT processing_status, attempts FROM grow_events WHERE dedupe_key = 'ev-q'");
    return !r.empty() && r[0].find("processing_status")->as_string() == "failed" && r[0].find("attempts")->as_int() == 2;
  }));
  auto failed = rows("SELECT last_error FROM grow_events WHERE dedupe_key = 'ev-q'");
  EXPECT_NE(failed[0].find("last_error")->as_string().find("projector qscore"), std::string::npos);
  // The failed transaction rolled back every projector's effect.
  EXPECT_EQ(count("SELECT count(*) FROM projection_applied"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM projections"), 0);
  // The mission was applied once and is not called again by replay.
  EXPECT_EQ(mission_stats("testMission", "u-q", "m1").find("calls")->as_int(), 1);

  rows("INSERT INTO users (id) VALUES ('u-q')");
  auto r1 = request("POST", "/events/replay", R"({"status":"failed","since":"2020-01-01T00:00:00Z"})");
  ASSERT_EQ(r1.status, 202) << r1.body;
  EXPECT_EQ(parse(r1).find("redriven")->as_int(), 1);
  ASSERT_TRUE(eventually([&] { return status_of("ev-q") == "processed"; }));
  auto r2 = request("POST", "/events/replay", R"({"status":"failed"})");
  EXPECT_EQ(parse(r2).find("matched")->as_int(), 0);
  // Ingesting it again is a duplicate of a processed event.
  EXPECT_EQ(post_event(ev).find("duplicate")->as_bool(), true);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(count("SELECT count(*) FROM qscore_snapshots WHERE user_id = 'u-q'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM projections WHERE user_id = 'u-q'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM projection_applied"), 2);
  Value stats = mission_stats("testMission", "u-q", "m1");
  EXPECT_EQ(stats.find("effects")->as_int(), 1);
  EXPECT_EQ(stats.find("calls")->as_int(), 1);  // the mission's applied mark survives the failed drive
}

TEST_F(Replay, ReplayValidatesItsRequest) {
  boot();
  EXPECT_EQ(request("POST", "/events/replay", R"({"status":"processed"})").status, 400);
  EXPECT_EQ(request("POST", "/events/replay", R"({})").status, 400);
  EXPECT_EQ(request("POST", "/events/replay", R"({"status":"failed","since":"yesterday"})").status, 400);
  EXPECT_EQ(request("POST", "/events/replay", R"({"status":"failed","dryRun":"yes"})").status, 400);
}

TEST_F(Replay, ADeadLetterIsListedAndRedrivenOnceWithACorrectedEvent) {
  boot();
  rows("INSERT INTO grow_events_dlq (stream, message_id, raw, error, attempts) VALUES ('s', '1-0', "
       "'{\"id\":\"ev-dl\",\"type\":\"t\",\"userId\":\"u1\",\"occurredAt\":\"bad\",\"payload\":{}}', 'bad time', 1)");
  auto list = request("GET", "/events/dlq");
  ASSERT_EQ(list.status, 200);
  auto letters = parse(list).find("deadLetters")->as_array();
  ASSERT_EQ(letters.size(), 1u);
  const std::string id = std::to_string(letters[0].find("id")->as_int());
  // As stored it is still invalid.
  EXPECT_EQ(request("POST", "/events/dlq/" + id + "/redrive").status, 422);
  std::string fixed = json::dump(obj({{"event", grow_event("ev-dl", "u1", "interview-to-offer", "m1")}}));
  auto r1 = request("POST", "/events/dlq/" + id + "/redrive", fixed);
  ASSERT_EQ(r1.status, 202) << r1.body;
  EXPECT_FALSE(parse(r1).find("duplicate")->as_bool());
  auto r2 = request("POST", "/events/dlq/" + id + "/redrive", fixed);
  EXPECT_TRUE(parse(r2).find("duplicate")->as_bool());
  ASSERT_TRUE(eventually([&] { return status_of("ev-dl") == "processed"; }));
  EXPECT_EQ(mission_stats("testMission", "u1", "m1").find("effects")->as_int(), 1);
  auto row = rows("SELECT redriven_at IS NOT NULL AS done FROM grow_events_dlq");
  EXPECT_TRUE(row[0].find("done")->as_bool());
  EXPECT_EQ(request("POST", "/events/dlq/999999/redrive").status, 404);
}
