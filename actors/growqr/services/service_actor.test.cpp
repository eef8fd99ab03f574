// Service actors against the product-services fake, real Postgres-backed
// node (RocksDB) and kill -9 through the test env.
#include "actors/growqr/services/service_actor.hpp"

#include <cctype>

#include "actors/growqr/events/grow_event.hpp"
#include "actors/growqr/missions/growqr_test_env.hpp"
#include "tests/fakes/services_fake.hpp"

namespace anvil::growqr {
namespace {

using namespace std::chrono_literals;
using testing::GrowqrTest;

class ServiceActors : public GrowqrTest {
 protected:
  void SetUp() override {
    GrowqrTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (const char* s : {"interview", "roleplay", "resume"}) {
      std::string key = s;
      for (auto& ch : key) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      config_[key + "_SERVICE_URL"] = svc_.url(s);
    }
    config_["SERVICE_RETRY_BACKOFF_MS"] = "200";
  }

  Result<Value> service(const std::string& actor, const std::string& action, Value req) {
    return call(actor, {"user_V1"}, action, {std::move(req)});
  }
  std::string job_status(const std::string& actor, const std::string& job) {
    auto r = call(actor, {"user_V1"}, "getJob", {Value(job)});
    return r.ok() ? r->find("status")->as_string() : "?";
  }

  fakes::ServicesFake svc_;
};

TEST_F(ServiceActors, ConfigureCallsTheServiceOnceWithTheDerivedIdempotencyKey) {
  Value req = obj({{"requestId", "req-1"}, {"missionInstanceId", "m-1"}, {"config", obj({{"role", "pm"}})}});
  auto r = service("interviewService", "configure", req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->find("status")->as_string(), "completed");
  EXPECT_TRUE(r->find("result")->find("configured")->as_bool());
  const std::string key = derive_dedupe_key("req-1", "user_V1", std::string("m-1"), std::string("interview"), "configure");
  EXPECT_EQ(r->find("idempotencyKey")->as_string(), key);
  ASSERT_EQ(svc_.keys().size(), 1u);
  EXPECT_EQ(svc_.keys()[0], key);
  EXPECT_EQ(svc_.last_body("interview", "configure").find("userId")->as_string(), "user_V1");

  auto again = service("interviewService", "configure", req);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->find("duplicate")->as_bool());
  EXPECT_EQ(*again->find("jobId"), *r->find("jobId"));
  EXPECT_EQ(svc_.calls("interview", "configure"), 1) << "a repeated request id makes no second call (D2)";
}

TEST_F(ServiceActors, AServiceDownDuringAHandOffLeavesAPendingJobThatCompletesOnRecovery) {
  svc_.down();
  auto r = service("roleplayService", "review", obj({{"requestId", "req-2"}, {"input", "my answer"}}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->find("status")->as_string(), "pending");
  const std::string job = r->find("jobId")->as_string();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(job_status("roleplayService", job), "pending");
  svc_.up();
  ASSERT_TRUE(eventually([&] { return job_status("roleplayService", job) == "completed"; }, 15s));
  EXPECT_EQ(svc_.effects("roleplay", "review"), 1);
}

TEST_F(ServiceActors, APendingJobSurvivesAKillAndCompletesAfterRestart) {
  svc_.refuse();
  auto r = service("resumeService", "createSession", obj({{"requestId", "req-3"}, {"options", obj({{"lang", "en"}})}}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->find("status")->as_string(), "pending");
  const std::string job = r->find("jobId")->as_string();
  stop_node();
  svc_.up();
  start_node();
  ASSERT_TRUE(eventually([&] { return job_status("resumeService", job) == "completed"; }, 20s));
  auto done = call("resumeService", {"user_V1"}, "getJob", {Value(job)});
  EXPECT_EQ(done->find("result")->find("sessionId")->as_string().rfind("resume-ses-", 0), 0u);
  EXPECT_EQ(svc_.effects("resume", "sessions"), 1);
}

TEST_F(ServiceActors, AClientErrorFailsTheJobAtOnce) {
  svc_.fail_next(1, 400);
  auto r = service("interviewService", "review", obj({{"requestId", "req-4"}, {"input", "x"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->find("status")->as_string(), "failed");
  EXPECT_EQ(r->find("attempts")->as_int(), 1);
}

TEST_F(ServiceActors, ARequestWithoutARequestIdIsRejected) {
  auto r = service("interviewService", "configure", obj({{"config", Object{}}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "validation.invalid_args");
  EXPECT_EQ(svc_.calls("interview", "configure"), 0);
}

}  // namespace
}  // namespace anvil::growqr

namespace anvil::growqr {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

class ServiceRoutes : public ServiceActors {};

TEST_F(ServiceRoutes, ARouteHandsTheRequestToTheCallersServiceActorOnceAndAnswersTheJob) {
  Headers h{{"x-user-id", "user_V1"}, {"content-type", "application/json"}};
  const std::string body = R"({"requestId":"r-7","missionInstanceId":"m-1","config":{"role":"pm"}})";
  auto r = request("POST", "/services/interview/configure", body, h);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body.find("status")->as_string(), "completed");
  auto again = request("POST", "/services/interview/configure", body, h);
  ASSERT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(*again.body.find("jobId"), *r.body.find("jobId"));
  EXPECT_EQ(svc_.calls("interview", "configure"), 1);
  auto job = request("GET", "/services/interview/jobs/" + r.body.find("jobId")->as_string(), "", h);
  EXPECT_EQ(job.status, 200) << job.raw;
  auto other = request("GET", "/services/interview/jobs/" + r.body.find("jobId")->as_string(), "",
                       Headers{{"x-user-id", "someone_else"}});
  EXPECT_EQ(other.status, 404) << "another user's job is not theirs to read";
}

TEST_F(ServiceRoutes, BadRequestsAreRefusedWithoutACall) {
  Headers h{{"x-user-id", "user_V1"}, {"content-type", "application/json"}};
  EXPECT_EQ(request("POST", "/services/nope/configure", R"({"requestId":"x"})", h).status, 404);
  auto no_id = request("POST", "/services/roleplay/review", R"({"input":{}})", h);
  EXPECT_EQ(no_id.status, 400) << no_id.raw;
  EXPECT_EQ(request("POST", "/services/roleplay/review", R"({"requestId":"x"})", Headers{}).status, 401);
  EXPECT_EQ(svc_.calls("roleplay", "review"), 0);
}

}  // namespace
}  // namespace anvil::growqr
