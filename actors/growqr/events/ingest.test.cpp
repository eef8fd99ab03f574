// POST /events, GET /events, the service token, userEventActor routing and
// the processing status (D1, D16), against real Postgres, RocksDB and Redis.
#include "actors/growqr/events/events_test_support.hpp"

using namespace anvil;
using namespace anvil::growqr;
using namespace anvil::growqr::testing;

using HttpIngest = EventsTest;

TEST_F(HttpIngest, ADuplicateIngestLeavesOneRowAndOneMissionEffect) {
  boot();
  Value ev = grow_event("ev-dup-1", "u1", "interview-to-offer", "m1", obj({{"step", 1}}));
  Value first = post_event(ev);
  EXPECT_EQ(first.find("duplicate")->as_bool(), false);
  EXPECT_EQ(first.find("dedupeKey")->as_string(), "ev-dup-1");
  EXPECT_EQ(first.find("status")->as_string(), "pending");
  ASSERT_TRUE(eventually([&] { return status_of("ev-dup-1") == "processed"; })) << status_of("ev-dup-1");
  Value second = post_event(ev);
  EXPECT_EQ(second.find("duplicate")->as_bool(), true);
  EXPECT_EQ(second.find("eventId")->as_string(), first.find("eventId")->as_string());
  EXPECT_EQ(second.find("status")->as_string(), "processed");
  EXPECT_EQ(count("SELECT count(*) FROM grow_events WHERE dedupe_key = 'ev-dup-1'"), 1);
  Value stats = mission_stats("testMission", "u1", "m1");
  EXPECT_EQ(stats.find("calls")->as_int(), 1);
  EXPECT_EQ(stats.find("effects")->as_int(), 1);
}

TEST_F(HttpIngest, ConcurrentDuplicatesWhilePendingStillGiveOneEffect) {
  boot();
  Value ev = grow_event("ev-race", "u1", "interview-to-offer", "m1");
  std::vector<std::future<std::optional<AppResponse>>> fs;
  for (int i = 0; i < 8; ++i) {
    AppRequest req;
    req.method = "POST";
    req.path = "/events";
    req.body = json::dump(ev);
    fs.push_back(asio::co_spawn(node_->io(), host_->handle(std::move(req)), asio::use_future));
  }
  int fresh = 0;
  for (auto& f : fs) {
    auto r = f.get();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    if (!json::parse(r->body, false)->find("duplicate")->as_bool()) ++fresh;
  }
  EXPECT_EQ(fresh, 1);
  ASSERT_TRUE(eventually([&] { return status_of("ev-race") == "processed"; }));
  EXPECT_EQ(count("SELECT count(*) FROM grow_events"), 1);
  EXPECT_EQ(mission_stats("testMission", "u1", "m1").find("calls")->as_int(), 1);
}

TEST_F(HttpIngest, AnInvalidEventIsA400NamingTheFieldAndNothingIsRecorded) {
  boot();
  Value bad = grow_event("ev-bad", "u1");
  bad["occurredAt"] = "not a time";
  auto r = request("POST", "/events", json::dump(bad));
  EXPECT_EQ(r.status, 400);
  auto body = json::parse(r.body, false).value();
  EXPECT_EQ(body.find("group")->as_string(), "event");
  EXPECT_EQ(body.find("code")->as_string(), "invalid");
  EXPECT_EQ(body.find("metadata")->find("field")->as_string(), "occurredAt");
  EXPECT_EQ(request("POST", "/events", "{not json").status, 400);
  Value keyless = grow_event("x", "u1");
  std::erase_if(keyless.as_object(), [](const auto& kv) { return kv.first == "id"; });
  EXPECT_EQ(request("POST", "/events", json::dump(keyless)).status, 400);
  EXPECT_EQ(count("SELECT count(*) FROM grow_events"), 0);
}

TEST_F(HttpIngest, AnEventWithoutMissionIsProjectedAndProcessed) {
  boot();
  post_event(grow_event("ev-s1", "u1", {}, {}, obj({{"sessionId", "s-1"}, {"status", "started"}})));
  ASSERT_TRUE(eventually([&] { return status_of("ev-s1") == "processed"; }));
  auto p = rows("SELECT value FROM projections WHERE user_id = 'u1' AND projector = 'service_session' AND key = 's-1'");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].find("value")->find("status")->as_string(), "started");
}

TEST_F(HttpIngest, AServiceTokenIsRequiredOutsideDevelopmentAndComparedExactly) {
  boot({{"GROWQR_ENV", "production"}, {"GROWQR_SERVICE_TOKEN", "s3cret"}});
  std::string body = json::dump(grow_event("ev-auth", "u1"));
  EXPECT_EQ(request("POST", "/events", body).status, 401);
  EXPECT_EQ(request("POST", "/events", body, {{"authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(request("POST", "/events", body, {{"authorization", "Bearer s3cret"}}).status, 202);
  EXPECT_EQ(request("GET", "/events").status, 401);
  EXPECT_EQ(request("POST", "/events/replay", R"({"status":"failed"})").status, 401);

  // Production without a configured token refuses everything (no tokenless ingest, D26).
  AppHost no_token(node_->rt(), {{"GROWQR_ENV", "production"}});
  no_token.add(*app_);
  EXPECT_EQ(request("POST", "/events", body, {{"authorization", "Bearer "}}, &no_token).status, 401);
  // Unset environment and no token: local default, open.
  AppHost local(node_->rt(), {});
  local.add(*app_);
  EXPECT_EQ(request("POST", "/events", body, {}, &local).status, 202);
  // Unset environment but a token configured: required.
  AppHost tokened(node_->rt(), {{"GROWQR_SERVICE_TOKEN", "t"}});
  tokened.add(*app_);
  EXPECT_EQ(request("POST", "/events", body, {}, &tokened).status, 401);
}

TEST_F(HttpIngest, ListingFiltersByStatusAndUser) {
  boot();
  post_event(grow_event("ev-l1", "u1"));
  post_event(grow_event("ev-l2", "u2"));
  post_event(grow_event("ev-l3", "u2", "no-such-mission", "m9"));
  ASSERT_TRUE(eventually([&] { return status_of("ev-l3") == "unresolved" && status_of("ev-l2") == "processed"; }));
  auto all = json::parse(request("GET", "/events?limit=10").body, false).value();
  EXPECT_EQ(all.find("events")->as_array().size(), 3u);
  auto u2 = json::parse(request("GET", "/events?userId=u2&status=processed").body, false).value();
  ASSERT_EQ(u2.find("events")->as_array().size(), 1u);
  EXPECT_EQ(u2.find("events")->as_array()[0].find("dedupeKey")->as_string(), "ev-l2");
  EXPECT_EQ(request("GET", "/events?status=bogus").status, 400);
  EXPECT_EQ(request("GET", "/events?limit=-1").status, 400);
}

TEST_F(HttpIngest, AFailingMissionActorIsRetriedUntilItAppliesTheEventOnce) {
  boot();
  post_event(grow_event("ev-flaky", "u1", "flaky", "m1"));
  ASSERT_TRUE(eventually([&] { return status_of("ev-flaky") == "processed"; })) << status_of("ev-flaky");
  Value stats = mission_stats("flakyMission", "u1", "m1");
  EXPECT_EQ(stats.find("calls")->as_int(), 3);
  EXPECT_EQ(stats.find("effects")->as_int(), 1);
  auto r = rows("SELECT attempts, last_error FROM grow_events WHERE dedupe_key = 'ev-flaky'");
  EXPECT_EQ(r[0].find("attempts")->as_int(), 2);
  EXPECT_TRUE(r[0].find("last_error")->is_null());
}

TEST_F(HttpIngest, AMissionInstanceWithoutTypeResolvesThroughTheActiveMissionRow) {
  boot();
  rows("INSERT INTO users (id) VALUES ('u1')");
  rows("INSERT INTO grow_active_missions (user_id, mission_instance_id, mission_type) VALUES ('u1', 'm7', "
       "'interview-to-offer')");
  post_event(grow_event("ev-typeless", "u1", {}, "m7"));
  post_event(grow_event("ev-orphan", "u1", {}, "m8"));
  ASSERT_TRUE(eventually([&] { return status_of("ev-typeless") == "processed"; }));
  ASSERT_TRUE(eventually([&] { return status_of("ev-orphan") == "unresolved"; }));
  EXPECT_EQ(mission_stats("testMission", "u1", "m7").find("effects")->as_int(), 1);
}

TEST_F(HttpIngest, APendingRowThatWasNeverHandedOverIsPickedUpByTheSweep) {
  boot();
  // What a crash between the insert and the hand-off leaves behind.
  rows("INSERT INTO grow_events (dedupe_key, user_id, type, payload, event, occurred_at, received_at) VALUES "
       "('ev-orphaned', 'u1', 't', '{}', $1::jsonb, now(), now() - interval '2 minutes')",
       {json::dump(obj({{"type", "t"},
                        {"userId", "u1"},
                        {"missionType", "interview-to-offer"},
                        {"missionInstanceId", "m1"},
                        {"occurredAt", "2026-03-01T10:00:00Z"},
                        {"payload", Object{}},
                        {"id", "ev-orphaned"},
                        {"dedupeKey", "ev-orphaned"}}))});
  auto n = node_->run(sweep_pending_once(*host_, std::chrono::milliseconds(60'000)));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  ASSERT_TRUE(eventually([&] { return status_of("ev-orphaned") == "processed"; }));
  EXPECT_EQ(mission_stats("testMission", "u1", "m1").find("effects")->as_int(), 1);
}

TEST_F(HttpIngest, AMissionCallWithoutAReplyInTimeIsSentAgainAndAppliedOnce) {
  boot();
  post_event(grow_event("ev-slow", "u1", "slow", "m1"));
  ASSERT_TRUE(eventually([&] { return status_of("ev-slow") == "processed"; }, 20s)) << status_of("ev-slow");
  auto r = rows("SELECT attempts FROM grow_events WHERE dedupe_key = 'ev-slow'");
  EXPECT_EQ(r[0].find("attempts")->as_int(), 1);  // the timed-out call counted as one failed attempt
  ASSERT_TRUE(eventually([&] { return mission_stats("slowMission", "u1", "m1").find("calls")->as_int() == 2; }));
  std::this_thread::sleep_for(1500ms);  // the late first reply arrives and changes nothing
  Value stats = mission_stats("slowMission", "u1", "m1");
  EXPECT_EQ(stats.find("calls")->as_int(), 2);
  EXPECT_EQ(stats.find("effects")->as_int(), 1);
  EXPECT_EQ(status_of("ev-slow"), "processed");
}
