// The legacy Redis observer (tasks:* / responses:*) against real Redis and
// Postgres, fed by the product-services fake as a legacy service would (D7).
#include "actors/growqr/events/legacy.hpp"

#include "actors/growqr/events/events_test_support.hpp"
#include "tests/fakes/fake_client.hpp"
#include "tests/fakes/services_fake.hpp"

using namespace anvil;
using namespace anvil::growqr;
using namespace anvil::growqr::testing;

namespace {

class LegacyObserver : public EventsTest {
 protected:
  void SetUp() override {
    EventsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    prefix_ = "anvil-test:" + tag_ + ":";
    cfg_.enabled = true;
    cfg_.key_prefix = prefix_;
    cfg_.orphan_after = 1ms;
    services_fake_.legacy_keys(redis_url(), prefix_);
    boot();
  }
  // A product-service request as the service actors send it.
  void call_service(const std::string& user, const std::string& op, const std::string& request_id,
                    const std::string& mission = "") {
    Value body = obj({{"userId", user}, {"requestId", request_id}, {"input", "cv"}});
    if (!mission.empty()) body["missionInstanceId"] = mission;
    auto r = http_.send("POST", services_fake_.url("interview") + "/" + op, json::dump(body),
                        {{"content-type", "application/json"}, {"idempotency-key", "k-" + request_id}});
    ASSERT_GE(r.status, 200) << r.error;
    ASSERT_LT(r.status, 300) << r.body;
  }
  // Like a node restart: the host, its Redis client and the node go first.
  void reboot(std::map<std::string, std::string> config = {}) {
    host_->stop();
    for (auto& f : services_) f.wait_for(10s);
    services_.clear();
    host_.reset();
    redis_.reset();
    node_.reset();
    boot(std::move(config));
  }
  LegacyPoll observe(LegacyState& state) {
    auto r = node_->run(observe_legacy_once(*host_, *redis_, LegacySource{}, cfg_, state));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : LegacyPoll{};
  }
  Value event_row(const std::string& dedupe_key) {
    auto r = rows("SELECT user_id, type, source, mission_instance_id, event FROM grow_events WHERE dedupe_key = $1",
                  {dedupe_key});
    return r.empty() ? Value() : r[0];
  }

  std::string prefix_;
  LegacyConfig cfg_;
  fakes::ServicesFake services_fake_;
  fakes::client::BlockingClient http_;
};

std::string field(const Value& v, std::string_view k) {
  const Value* f = v.is_object() ? v.find(k) : nullptr;
  return f && f->is_string() ? f->as_string() : "";
}

TEST_F(LegacyObserver, AResponseBecomesOneGrowEventOfItsTasksUserAndAction) {
  call_service("u_leg1", "review", "req-1", "m1");
  ASSERT_EQ(services_fake_.task_ids().size(), 1u);
  const std::string task = services_fake_.task_ids().front();
  LegacyState state;
  auto first = observe(state);
  EXPECT_EQ(first.tasks_recorded, 1);
  EXPECT_EQ(first.events_emitted, 1);
  Value row = event_row("legacy:interview:" + task);
  ASSERT_TRUE(row.is_object()) << "no grow_events row for the response";
  EXPECT_EQ(field(row, "user_id"), "u_leg1");
  EXPECT_EQ(field(row, "type"), "interview.review.completed");
  EXPECT_EQ(field(row, "mission_instance_id"), "m1");
  EXPECT_EQ(field(row, "source"), "redis:legacy");
  // Handed to the user's userEventActor, which leaves it `unresolved` (this
  // test registers no active mission m1) rather than `pending`.
  EXPECT_TRUE(eventually([&] { return status_of("legacy:interview:" + task) == "unresolved"; }))
      << status_of("legacy:interview:" + task);

  auto again = observe(state);
  EXPECT_EQ(again.events_emitted, 0);
  LegacyState fresh;  // a restarted node: Postgres remembers
  EXPECT_EQ(observe(fresh).events_emitted, 0);
  EXPECT_EQ(count("SELECT count(*) FROM grow_events"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM legacy_tasks WHERE status = 'emitted'"), 1);
}

// D7: the task's context outlives the node's memory and the task key itself.
TEST_F(LegacyObserver, ARestartBetweenATaskAndItsResponseStillAttributesTheResponse) {
  services_fake_.hold_responses(true);
  call_service("u_leg2", "sessions", "req-2");
  const std::string task = services_fake_.task_ids().front();
  {
    LegacyState before_restart;
    auto seen = observe(before_restart);
    EXPECT_EQ(seen.tasks_recorded, 1);
    EXPECT_EQ(seen.events_emitted, 0) << "no response yet";
  }
  // The node restarts; meanwhile the service drops its task key and answers.
  reboot();
  services_fake_.forget_tasks();
  services_fake_.release_responses();
  LegacyState after_restart;
  auto seen = observe(after_restart);
  EXPECT_EQ(seen.events_emitted, 1);
  Value row = event_row("legacy:interview:" + task);
  ASSERT_TRUE(row.is_object());
  EXPECT_EQ(field(row, "user_id"), "u_leg2");
  EXPECT_EQ(field(row, "type"), "interview.sessions.completed");
}

TEST_F(LegacyObserver, AResponseWithoutATaskIsDeadLetteredOnceAndAttributedWhenTheTaskShowsUp) {
  std::vector<std::string> set_response{"SET", prefix_ + "responses:lonely-1", R"({"status":"failed","error":"boom"})"};
  ASSERT_TRUE(node_->run(redis_->command(set_response)).ok());
  LegacyState state;
  EXPECT_EQ(observe(state).dead_lettered, 0) << "the grace period starts at first sight";
  std::this_thread::sleep_for(5ms);
  auto first = observe(state);
  EXPECT_EQ(first.events_emitted, 0);
  EXPECT_EQ(first.dead_lettered, 1);
  EXPECT_EQ(count("SELECT count(*) FROM grow_events_dlq WHERE stream = 'legacy:responses' AND message_id = 'lonely-1'"),
            1);
  EXPECT_EQ(observe(state).dead_lettered, 0);
  LegacyState fresh;
  EXPECT_EQ(observe(fresh).dead_lettered, 0) << "once, across restarts";

  std::vector<std::string> set_task{"SET", prefix_ + "tasks:lonely-1",
                                    R"({"userId":"u_leg3","action":"review","service":"resume"})"};
  ASSERT_TRUE(node_->run(redis_->command(set_task)).ok());
  auto late = observe(state);
  EXPECT_EQ(late.tasks_recorded, 1);
  EXPECT_EQ(late.events_emitted, 1);
  Value row = event_row("legacy:resume:lonely-1");
  ASSERT_TRUE(row.is_object());
  EXPECT_EQ(field(row, "type"), "resume.review.failed");
  EXPECT_EQ(field(row, "user_id"), "u_leg3");
}

TEST_F(LegacyObserver, AMalformedTaskIsIgnoredAndDoesNotStopTheOthers) {
  std::vector<std::string> bad{"SET", prefix_ + "tasks:bad-1", "not json"};
  std::vector<std::string> no_user{"SET", prefix_ + "tasks:bad-2", R"({"action":"review"})"};
  ASSERT_TRUE(node_->run(redis_->command(bad)).ok());
  ASSERT_TRUE(node_->run(redis_->command(no_user)).ok());
  call_service("u_leg4", "configure", "req-4");
  LegacyState state;
  auto seen = observe(state);
  EXPECT_EQ(seen.tasks_recorded, 1);
  EXPECT_EQ(seen.events_emitted, 1);
}

// The services fake's canonical path: each effect XADDs a Grow Event that the
// stream consumer records once.
TEST_F(LegacyObserver, TheServicesFakesPublishedGrowEventsAreConsumedOnce) {
  services_fake_.publish_events(redis_url(), stream_);
  start_consumer(consumer("legacy-c1"));
  call_service("u_leg5", "review", "req-5");
  call_service("u_leg5", "review", "req-5");  // the same key: one effect, one event
  ASSERT_TRUE(eventually([&] { return count("SELECT count(*) FROM grow_events WHERE user_id = 'u_leg5'") == 1; }));
  auto r = rows("SELECT type, processing_status FROM grow_events WHERE user_id = 'u_leg5'");
  EXPECT_EQ(field(r.at(0), "type"), "interview.review.completed");
  EXPECT_EQ(services_fake_.effects("interview", "review"), 1);
}

TEST_F(LegacyObserver, ObserversAreOnInDevelopmentAndNeedTheFlagElsewhere) {
  EXPECT_TRUE(legacy_config(*host_).enabled) << "development";
  reboot({{"GROWQR_ENV", "staging"}});
  EXPECT_FALSE(legacy_config(*host_).enabled);
  reboot({{"GROWQR_ENV", "production"}, {"LEGACY_REDIS_OBSERVERS", "true"}});
  EXPECT_TRUE(legacy_config(*host_).enabled);
  reboot({{"GROWQR_ENV", "development"}, {"LEGACY_REDIS_OBSERVERS", "false"}});
  EXPECT_FALSE(legacy_config(*host_).enabled);
}

}  // namespace
