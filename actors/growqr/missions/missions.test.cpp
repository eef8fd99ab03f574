// Missions: the registry, the typed state machines, mission actors mirrored
// to grow_active_missions, growActor and the /grow and /missions routes.
// Real Postgres (ANVIL_POSTGRES_URL), real RocksDB, in-process node.
#include <set>

#include "actors/growqr/mission_registry.hpp"
#include "actors/growqr/missions/growqr_test_env.hpp"
#include "actors/growqr/missions/mission_machine.hpp"

using namespace anvil;
using namespace anvil::growqr;
using anvil::growqr::testing::GrowqrTest;

namespace {

const std::string kUser = "user-1";

std::string code_of(const Result<Value>& r) { return r.ok() ? "ok" : r.error().qualified(); }

}  // namespace

TEST(MissionRegistry, EveryTypeResolvesToOneRegisteredActorAndUnknownTypesToNothing) {
  const auto& types = mission_types();
  ASSERT_EQ(types.size(), 5u);
  EXPECT_EQ(types[0].type, "interview-to-offer");
  EXPECT_EQ(types[0].actor, "interviewToOfferMission");
  std::set<std::string> actors;
  for (const auto& t : types) {
    EXPECT_EQ(find_mission_type(t.type), &t);
    EXPECT_EQ(find_mission_type_by_actor(t.actor), &t);
    EXPECT_TRUE(actors.insert(t.actor).second) << "two types share actor " << t.actor;
    EXPECT_NE(anvil::growqr::testing::parts_registry().find(t.actor), nullptr) << t.actor << " is not registered";
  }
  EXPECT_EQ(find_mission_type("no-such-mission"), nullptr);
  EXPECT_EQ(find_mission_type(""), nullptr);
  EXPECT_EQ(find_mission_type_by_actor("growActor"), nullptr);
  EXPECT_TRUE(is_custom_mission_type("interview-to-offer"));
  EXPECT_FALSE(is_custom_mission_type("resume-boost"));
}

TEST(MissionMachine, TheLifecycleTableAllowsOnlyItsRows) {
  EXPECT_EQ(next_status(MissionStatus::not_started, MissionEvent::start), MissionStatus::active);
  EXPECT_EQ(next_status(MissionStatus::active, MissionEvent::pause), MissionStatus::paused);
  EXPECT_EQ(next_status(MissionStatus::paused, MissionEvent::resume), MissionStatus::active);
  EXPECT_FALSE(next_status(MissionStatus::active, MissionEvent::start));
  EXPECT_FALSE(next_status(MissionStatus::paused, MissionEvent::pause));
  EXPECT_FALSE(next_status(MissionStatus::active, MissionEvent::resume));
  EXPECT_FALSE(next_status(MissionStatus::completed, MissionEvent::resume));
  EXPECT_FALSE(next_status(MissionStatus::not_started, MissionEvent::pause));
  for (auto s : {MissionStatus::not_started, MissionStatus::active, MissionStatus::paused, MissionStatus::completed,
                 MissionStatus::abandoned})
    EXPECT_EQ(parse_mission_status(to_string(s)), s);
}

TEST(MissionMachine, InterviewStagesMoveOnlyAlongTheirTable) {
  const auto& m = interview_to_offer_stages();
  EXPECT_EQ(m.initial(), "discovery");
  EXPECT_EQ(m.final_stage, "offer");
  EXPECT_TRUE(m.check("discovery", "preparation").ok());
  EXPECT_TRUE(m.check("interviewing", "practice").ok());
  EXPECT_TRUE(m.check("negotiation", "offer").ok());
  auto skip = m.check("discovery", "offer");
  ASSERT_FALSE(skip.ok());
  EXPECT_EQ(skip.error().qualified(), "mission.illegal_transition");
  EXPECT_EQ(skip.error().metadata->find("from")->as_string(), "discovery");
  EXPECT_EQ(skip.error().metadata->find("to")->as_string(), "offer");
  EXPECT_FALSE(m.check("offer", "discovery").ok());
  EXPECT_FALSE(m.check("discovery", "nowhere").ok());
  const auto& thin = thin_mission_stages();
  EXPECT_TRUE(thin.check("kickoff", "in_progress").ok());
  EXPECT_TRUE(thin.check("review", "in_progress").ok());
  EXPECT_FALSE(thin.check("kickoff", "done").ok());
}

class Missions : public GrowqrTest {};

TEST_F(Missions, AnIllegalTransitionIsATypedErrorAndLeavesTheStateUnchanged) {
  ActorKey key{kUser, "m-1"};
  ASSERT_EQ(code_of(call("interviewToOfferMission", key, "start")), "ok");
  ASSERT_EQ(code_of(call("interviewToOfferMission", key, "pause")), "ok");
  auto before = call("interviewToOfferMission", key, "getState");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->find("status")->as_string(), "paused");

  auto again = call("interviewToOfferMission", key, "pause");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().qualified(), "mission.illegal_transition");
  ASSERT_TRUE(again.error().metadata);
  EXPECT_EQ(again.error().metadata->find("from")->as_string(), "paused");
  EXPECT_EQ(again.error().metadata->find("event")->as_string(), "pause");

  auto patch = call("interviewToOfferMission", key, "applyStagePatch",
                    {obj({{"patchId", "p-1"}, {"stage", "preparation"}})});
  ASSERT_FALSE(patch.ok());
  EXPECT_EQ(patch.error().qualified(), "mission.illegal_transition");
  EXPECT_EQ(patch.error().metadata->find("event")->as_string(), "stagePatch");

  ASSERT_EQ(code_of(call("interviewToOfferMission", key, "resume")), "ok");
  auto skip = call("interviewToOfferMission", key, "applyStagePatch", {obj({{"patchId", "p-2"}, {"stage", "offer"}})});
  ASSERT_FALSE(skip.ok());
  EXPECT_EQ(skip.error().qualified(), "mission.illegal_transition");
  EXPECT_EQ(skip.error().metadata->find("from")->as_string(), "discovery");
  EXPECT_EQ(skip.error().metadata->find("to")->as_string(), "offer");

  auto after = call("interviewToOfferMission", key, "getState");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->find("stage")->as_string(), "discovery");
  EXPECT_EQ(after->find("status")->as_string(), "active");
  EXPECT_EQ(after->find("version")->as_int(), before->find("version")->as_int() + 1) << "only resume changed it";
  auto row = rows("SELECT status, stage FROM grow_active_missions WHERE user_id = $1 AND mission_instance_id = $2",
                  {kUser, "m-1"});
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0].find("status")->as_string(), "active");
  EXPECT_EQ(row[0].find("stage")->as_string(), "discovery");
}

TEST_F(Missions, ARepeatedStagePatchChangesNothing) {
  ActorKey key{kUser, "m-2"};
  ASSERT_EQ(code_of(call("interviewToOfferMission", key, "start")), "ok");
  Value patch = obj({{"dedupeKey", "evt-42"}, {"stage", "preparation"}, {"data", obj({{"company", "Acme"}})}});
  auto first = call("interviewToOfferMission", key, "applyStagePatch", {patch});
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->find("duplicate")->as_bool());
  EXPECT_EQ(first->find("stage")->as_string(), "preparation");
  const int64_t version = first->find("version")->as_int();
  auto row_before = rows("SELECT state, updated_at FROM grow_active_missions WHERE mission_instance_id = 'm-2'");

  auto second = call("interviewToOfferMission", key, "applyStagePatch", {patch});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE(second->find("duplicate")->as_bool());
  EXPECT_EQ(second->find("version")->as_int(), version);
  EXPECT_EQ(second->find("stage")->as_string(), "preparation");
  EXPECT_EQ(rows("SELECT state, updated_at FROM grow_active_missions WHERE mission_instance_id = 'm-2'"), row_before);

  // The custom rule of interview-to-offer: each move into interviewing is a round.
  ASSERT_TRUE(call("interviewToOfferMission", key, "applyStagePatch", {obj({{"patchId", "a"}, {"stage", "practice"}})}).ok());
  auto round = call("interviewToOfferMission", key, "applyStagePatch",
                    {obj({{"patchId", "b"}, {"stage", "interviewing"}})});
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->find("data")->find("interviewRounds")->as_int(), 1);
  EXPECT_EQ(round->find("data")->find("company")->as_string(), "Acme");
}

TEST_F(Missions, ReachingTheFinalStageCompletesTheMission) {
  ActorKey key{kUser, "m-3"};
  ASSERT_EQ(code_of(call("interviewToOfferMission", key, "start")), "ok");
  int n = 0;
  for (const char* stage : {"preparation", "practice", "interviewing", "negotiation", "offer"}) {
    auto r = call("interviewToOfferMission", key, "applyStagePatch",
                  {obj({{"patchId", "s" + std::to_string(n++)}, {"stage", stage}})});
    ASSERT_TRUE(r.ok()) << stage << ": " << r.error().message;
  }
  auto st = call("interviewToOfferMission", key, "getState");
  EXPECT_EQ(st->find("status")->as_string(), "completed");
  EXPECT_EQ(count("SELECT count(*) AS n FROM grow_active_missions WHERE mission_instance_id = 'm-3' AND status = "
                  "'completed' AND stage = 'offer'"),
            1);
  EXPECT_EQ(code_of(call("interviewToOfferMission", key, "pause")), "mission.illegal_transition");
}

TEST_F(Missions, ThinMissionsShareOneImplementationUnderTheirOwnActorNames) {
  ActorKey key{kUser, "t-1"};
  auto started = call("skillSprintMission", key, "start");
  ASSERT_TRUE(started.ok()) << started.error().message;
  EXPECT_EQ(started->find("type")->as_string(), "skill-sprint");
  EXPECT_EQ(started->find("stage")->as_string(), "kickoff");
  auto moved = call("skillSprintMission", key, "applyStagePatch", {obj({{"patchId", "x"}, {"stage", "in_progress"}})});
  ASSERT_TRUE(moved.ok());
  auto artifact = call("skillSprintMission", key, "addArtifact", {obj({{"key", "notes"}, {"content", "hello"}})});
  ASSERT_TRUE(artifact.ok());
  auto again = call("skillSprintMission", key, "addArtifact", {obj({{"key", "notes"}, {"content", "other"}})});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->find("duplicate")->as_bool());
  EXPECT_EQ(again->find("artifacts")->as_array().size(), 1u);
  EXPECT_EQ(count("SELECT count(*) AS n FROM grow_active_missions WHERE mission_type = 'skill-sprint'"), 1);
}

TEST_F(Missions, StartingAnUnknownMissionTypeIsAClearError) {
  auto r = request("POST", "/missions/no-such-mission/start", "", {{"x-user-id", kUser}});
  EXPECT_EQ(r.status, 404) << r.raw;
  EXPECT_EQ(r.body.find("code")->as_string(), "unknown_type");
  EXPECT_NE(r.body.find("message")->as_string().find("no-such-mission"), std::string::npos);
  EXPECT_EQ(r.body.find("metadata")->find("known")->as_array().size(), 5u);
  auto direct = call("growActor", {kUser}, "startMission", {"nope"});
  EXPECT_EQ(code_of(direct), "mission.unknown_type");
  auto state = call("growActor", {kUser}, "getActiveState");
  EXPECT_TRUE(state->find("missions")->as_array().empty()) << "nothing was recorded";
  EXPECT_EQ(request("POST", "/missions/interview-to-offer/start").status, 401) << "no x-user-id";
}

TEST_F(Missions, TheRoutesDriveMissionsThroughGrowActorAndMirrorThemToPostgres) {
  auto catalog = request("GET", "/missions");
  ASSERT_EQ(catalog.status, 200);
  EXPECT_EQ(catalog.body.find("missions")->as_array().size(), 5u);

  const std::vector<std::pair<std::string, std::string>> user{{"x-user-id", kUser}};
  auto started = request("POST", "/missions/interview-to-offer/start", "{}", user);
  ASSERT_EQ(started.status, 202) << started.raw;
  const std::string id = started.body.find("missionInstanceId")->as_string();
  EXPECT_EQ(id, "interview-to-offer-1");
  auto status_of = [&](const std::string& mission) -> std::string {
    auto g = request("GET", "/grow", "", user);
    if (g.status != 200) return "http " + std::to_string(g.status);
    for (const auto& m : g.body.find("missions")->as_array())
      if (m.find("missionInstanceId")->as_string() == mission) return m.find("status")->as_string();
    return "missing";
  };
  ASSERT_TRUE(eventually([&] { return status_of(id) == "active"; })) << status_of(id);
  // The mission tells growActor when its turn commits, and writes its row in
  // the wait that follows: the row may land a moment after.
  EXPECT_TRUE(eventually([&] {
    return count("SELECT count(*) AS n FROM grow_active_missions WHERE user_id = $1 AND mission_instance_id = $2 "
                 "AND status = 'active'",
                 {kUser, id}) == 1;
  }));
  // A second start without an id returns the unfinished instance.
  auto repeat = request("POST", "/missions/interview-to-offer/start", "", user);
  ASSERT_EQ(repeat.status, 202);
  EXPECT_EQ(repeat.body.find("missionInstanceId")->as_string(), id);
  EXPECT_TRUE(repeat.body.find("existing")->as_bool());

  ASSERT_EQ(request("POST", "/missions/" + id + "/pause", "", user).status, 202);
  ASSERT_TRUE(eventually([&] { return status_of(id) == "paused"; }));
  auto illegal = request("POST", "/missions/" + id + "/pause", "", user);
  EXPECT_EQ(illegal.status, 409) << illegal.raw;
  EXPECT_EQ(illegal.body.find("code")->as_string(), "illegal_transition");
  auto patch_while_paused = request("POST", "/missions/" + id + "/stage", R"({"stage":"preparation"})",
                                    {{"x-user-id", kUser}, {"idempotency-key", "evt-1"}});
  EXPECT_EQ(patch_while_paused.status, 409) << patch_while_paused.raw;

  ASSERT_EQ(request("POST", "/missions/" + id + "/resume", "", user).status, 202);
  ASSERT_TRUE(eventually([&] { return status_of(id) == "active"; }));
  auto patched = request("POST", "/missions/" + id + "/stage", R"({"stage":"preparation"})",
                         {{"x-user-id", kUser}, {"idempotency-key", "evt-1"}});
  ASSERT_EQ(patched.status, 200) << patched.raw;
  EXPECT_EQ(patched.body.find("stage")->as_string(), "preparation");
  auto art = request("POST", "/missions/" + id + "/artifacts", R"({"key":"cv","kind":"resume","content":"..."})", user);
  ASSERT_EQ(art.status, 200) << art.raw;
  EXPECT_EQ(art.body.find("artifacts")->as_array().size(), 1u);
  auto row = rows("SELECT stage, state FROM grow_active_missions WHERE mission_instance_id = $1", {id});
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0].find("stage")->as_string(), "preparation");
  EXPECT_EQ(row[0].find("state")->find("artifacts")->as_array().size(), 1u);

  EXPECT_EQ(request("POST", "/missions/nope-7/pause", "", user).status, 404);
}

TEST_F(Missions, DriftBetweenAMissionAndItsRowIsHealedAtWake) {
  ActorKey key{kUser, "d-1"};
  ASSERT_EQ(code_of(call("interviewToOfferMission", key, "start")), "ok");
  // Someone edits the mirror behind the actor's back.
  rows("UPDATE grow_active_missions SET status = 'paused', stage = 'offer' WHERE mission_instance_id = 'd-1' RETURNING 1");
  stop_node();
  start_node();
  auto st = call("interviewToOfferMission", key, "getState");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->find("status")->as_string(), "active");
  ASSERT_TRUE(st->find("drift")->is_object());
  EXPECT_EQ(st->find("drift")->find("count")->as_int(), 1);
  EXPECT_EQ(st->find("drift")->find("last")->find("kind")->as_string(), "row_differs");
  auto row = rows("SELECT status, stage FROM grow_active_missions WHERE mission_instance_id = 'd-1'");
  EXPECT_EQ(row[0].find("status")->as_string(), "active");
  EXPECT_EQ(row[0].find("stage")->as_string(), "discovery");
  // A missing row is written back, too.
  rows("DELETE FROM grow_active_missions WHERE mission_instance_id = 'd-1' RETURNING 1");
  stop_node();
  start_node();
  ASSERT_TRUE(call("interviewToOfferMission", key, "getState").ok());
  EXPECT_EQ(count("SELECT count(*) AS n FROM grow_active_missions WHERE mission_instance_id = 'd-1'"), 1);
}

TEST_F(Missions, GrowActorsMissionSequenceResumesAfterARestart) {
  auto a = call("growActor", {kUser}, "startMission", {"resume-boost"});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->find("missionInstanceId")->as_string(), "resume-boost-1");
  // Let the driven start land (its mirror write included) before the kill.
  ASSERT_TRUE(eventually([&] {
    return count("SELECT count(*) AS n FROM grow_active_missions WHERE mission_instance_id = 'resume-boost-1'") == 1;
  }));
  ASSERT_TRUE(eventually([&] {
    auto s = call("growActor", {kUser}, "getMission", {"resume-boost-1"});
    return s.ok() && s->find("status")->as_string() == "active";
  }));
  stop_node();
  start_node();
  auto b = call("growActor", {kUser}, "startMission", {"network-builder"});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->find("missionInstanceId")->as_string(), "network-builder-2");
  ASSERT_TRUE(eventually([&] {
    auto s = call("growActor", {kUser}, "getActiveState");
    int active = 0;
    for (const auto& m : s->find("missions")->as_array()) active += m.find("status")->as_string() == "active";
    return active == 2;
  }));
  // The list can be rebuilt from the mirror: a fresh growActor for the same user reconciles at bootstrap.
  // (The mission actor writes its mirror row after its state turns active: wait for it.)
  EXPECT_TRUE(eventually([&] {
    return count("SELECT count(*) AS n FROM grow_active_missions WHERE user_id = $1", {kUser}) == 2;
  }));
}

TEST_F(Missions, AGrowEventMovesItsMissionOnceThroughTheRealRegistry) {
  const std::vector<std::pair<std::string, std::string>> user{{"x-user-id", kUser}};
  auto started = request("POST", "/missions/interview-to-offer/start", "{}", user);
  ASSERT_EQ(started.status, 202) << started.raw;
  const std::string id = started.body.find("missionInstanceId")->as_string();
  auto stage = [&]() -> std::string {
    auto s = call("interviewToOfferMission", {kUser, id}, "getState");
    if (!s.ok()) return "error";
    if (s->find("status")->as_string() != "active") return "not active";
    return s->find("stage")->as_string();
  };
  ASSERT_TRUE(eventually([&] { return stage() == "discovery"; })) << stage();
  const std::string event = R"({"id":"ev-stage-1","type":"mission.stage","userId":")" + std::string(kUser) +
                            R"(","missionInstanceId":")" + id +
                            R"(","missionType":"interview-to-offer","occurredAt":"2026-12-01T10:00:00Z",)"
                            R"("payload":{"stage":"preparation","note":"ready"}})";
  auto first = request("POST", "/events", event);
  ASSERT_EQ(first.status, 202) << first.raw;
  EXPECT_TRUE(eventually([&] { return stage() == "preparation"; })) << stage();
  EXPECT_TRUE(eventually([&] {
    return count("SELECT count(*) AS n FROM grow_events WHERE dedupe_key = $1 AND processing_status = 'processed'",
                 {"ev-stage-1"}) == 1;
  }));
  auto again = request("POST", "/events", event);
  ASSERT_EQ(again.status, 202) << again.raw;
  EXPECT_TRUE(again.body.find("duplicate")->as_bool());
  auto s = call("interviewToOfferMission", {kUser, id}, "getState");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->find("stage")->as_string(), "preparation");
  EXPECT_EQ(count("SELECT count(*) AS n FROM grow_events WHERE dedupe_key = $1", {"ev-stage-1"}), 1);
}
