// Workflow runs: routes enqueue commands on workflowRunActor (the only
// executor), module calls go through the one outbound client with the step's
// stable idempotency key, retries are counted in workflow_run_modules, and a
// kill mid-call leaves exactly one recorded effect. Real Postgres, real
// RocksDB, the real outbound client and a local fake product service.
#include <future>

#include "actors/growqr/missions/growqr_test_env.hpp"
#include "tests/fakes/fake_http.hpp"

using namespace anvil;
using namespace anvil::growqr;
using namespace std::chrono_literals;
using anvil::fakes::FakeHttpServer;
using anvil::fakes::FakeResponse;
using anvil::growqr::testing::HttpResult;

namespace {

const std::string kUser = "user-w";
const std::string kPath = "/modules/prep/run";

class WorkflowRuns : public anvil::growqr::testing::GrowqrTest {
 protected:
  void SetUp() override {
    config_["INTERVIEW_SERVICE_URL"] = service_.url("/");
    config_["WORKFLOW_RETRY_BACKOFF_MS"] = "30";
    GrowqrTest::SetUp();
  }

  // A run with one interview module `prep`; returns its id.
  std::string create_run(const std::string& key, int max_retries = 3) {
    const std::string body = R"({"userId":")" + kUser +
                             R"(","modules":[{"id":"prep","service":"interview","maxRetries":)" +
                             std::to_string(max_retries) + R"(,"input":{"role":"SRE"}}]})";
    auto r = request("POST", "/workflow-runs", body, {{"idempotency-key", key}});
    EXPECT_TRUE(r.status == 201 || r.status == 200) << r.raw;
    return r.body.find("runId") ? r.body.find("runId")->as_string() : "";
  }
  HttpResult run_module(const std::string& run, const std::string& key, const std::string& module = "prep") {
    return request("POST", "/workflow-runs/" + run + "/modules/" + module + "/run", "", {{"idempotency-key", key}});
  }
  std::string module_status(const std::string& run) {
    auto r = rows("SELECT status FROM workflow_run_modules WHERE run_id = $1 AND module_id = 'prep'", {run});
    return r.empty() ? "" : r[0].find("status")->as_string();
  }
  bool module_ends(const std::string& run, const std::string& status, std::chrono::milliseconds t = 10s) {
    return eventually([&] { return module_status(run) == status; }, t);
  }
  int64_t events(const std::string& run, const std::string& type) {
    return count("SELECT count(*) AS n FROM workflow_events WHERE run_id = $1 AND type = $2", {run, type});
  }
  // The actor's own view, once the outcome is applied to its state too.
  bool actor_settles(const std::string& run) {
    return eventually([&] {
      auto g = request("GET", "/workflow-runs/" + run);
      if (g.status != 200) return false;
      for (const auto& m : g.body.find("modules")->as_array())
        if (m.find("moduleId")->as_string() == "prep")
          return m.find("status")->as_string() == "succeeded" || m.find("status")->as_string() == "failed";
      return false;
    });
  }

  FakeHttpServer service_;
};

}  // namespace

TEST_F(WorkflowRuns, ADoubleSubmitGivesOneRun) {
  const std::string a = create_run("submit-1");
  ASSERT_FALSE(a.empty());
  const std::string body = R"({"userId":")" + kUser + R"(","modules":[{"id":"prep","service":"interview"}]})";
  auto again = request("POST", "/workflow-runs", body, {{"idempotency-key", "submit-1"}});
  EXPECT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(again.body.find("runId")->as_string(), a);
  EXPECT_TRUE(again.body.find("existing")->as_bool());
  EXPECT_EQ(count("SELECT count(*) AS n FROM workflow_runs"), 1);
  EXPECT_EQ(count("SELECT count(*) AS n FROM workflow_run_modules"), 1);
  // The key may come in the body, too; another key is another run.
  auto other = request("POST", "/workflow-runs",
                       R"({"userId":")" + kUser + R"(","idempotencyKey":"submit-2","modules":["prep"]})");
  EXPECT_EQ(other.status, 400) << "a module needs a service: " << other.raw;
  auto b = request("POST", "/workflow-runs",
                   R"({"userId":")" + kUser + R"(","idempotencyKey":"submit-2","modules":[{"id":"x","service":"resume"}]})");
  ASSERT_EQ(b.status, 201) << b.raw;
  EXPECT_NE(b.body.find("runId")->as_string(), a);
  auto no_key = request("POST", "/workflow-runs", body);
  EXPECT_EQ(no_key.status, 400);
  EXPECT_EQ(no_key.body.find("code")->as_string(), "idempotency_key_required");
  EXPECT_EQ(count("SELECT count(*) AS n FROM workflow_runs"), 2);
}

TEST_F(WorkflowRuns, TwoRunRequestsWithTheSameKeyMakeOneServiceCallAndShareACommandId) {
  service_.route("POST", kPath, FakeResponse::json(200, R"({"output":{"score":7}})").after(200ms));
  const std::string run = create_run("dup");
  // Both requests at once, each its own coroutine.
  AppRequest req;
  req.method = "POST";
  req.path = "/workflow-runs/" + run + "/modules/prep/run";
  req.headers = {{"idempotency-key", "click-1"}};
  auto f1 = asio::co_spawn(node_->io(), host_->handle(req), asio::use_future);
  auto f2 = asio::co_spawn(node_->io(), host_->handle(req), asio::use_future);
  auto r1 = f1.get(), r2 = f2.get();
  ASSERT_TRUE(r1 && r2);
  ASSERT_EQ(r1->status, 202) << r1->body;
  ASSERT_EQ(r2->status, 202) << r2->body;
  const std::string c1 = json::parse(r1->body, false)->find("commandId")->as_string();
  EXPECT_EQ(json::parse(r2->body, false)->find("commandId")->as_string(), c1);

  ASSERT_TRUE(module_ends(run, "succeeded"));
  auto late = run_module(run, "click-1");  // after completion: same id, nothing runs
  EXPECT_EQ(late.status, 202);
  EXPECT_EQ(late.body.find("commandId")->as_string(), c1);
  EXPECT_TRUE(late.body.find("duplicate")->as_bool());
  auto other = run_module(run, "click-2");
  EXPECT_EQ(other.status, 409) << other.raw;
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(service_.requests("POST", kPath).size(), 1u);
  EXPECT_EQ(events(run, "module.succeeded"), 1);
  EXPECT_EQ(count("SELECT count(*) AS n FROM workflow_run_modules WHERE command_id = $1", {c1}), 1);
  auto body = json::parse(service_.requests("POST", kPath)[0].body, false);
  EXPECT_EQ(body->find("input")->find("role")->as_string(), "SRE");
  EXPECT_EQ(rows("SELECT status FROM workflow_runs WHERE id = $1", {run})[0].find("status")->as_string(), "completed");
}

TEST_F(WorkflowRuns, RetryableFailuresCountOncePerAttemptAndStopAtMaxRetries) {
  service_.route("POST", kPath, FakeResponse::text(503, "busy"));
  const std::string run = create_run("retry", 3);
  ASSERT_EQ(run_module(run, "k").status, 202);
  ASSERT_TRUE(module_ends(run, "failed"));
  ASSERT_TRUE(actor_settles(run));
  std::this_thread::sleep_for(400ms);  // several backoffs: no further call
  const auto reqs = service_.requests("POST", kPath);
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& r : reqs) EXPECT_EQ(r.header("idempotency-key"), reqs[0].header("idempotency-key"));
  EXPECT_EQ(reqs[0].header("idempotency-key")->rfind("wf-", 0), 0u);
  auto row = rows("SELECT retry_count, max_retries, last_error, next_attempt_at FROM workflow_run_modules "
                  "WHERE run_id = $1",
                  {run});
  EXPECT_EQ(row[0].find("retry_count")->as_int(), 3);
  EXPECT_EQ(row[0].find("max_retries")->as_int(), 3);
  EXPECT_NE(row[0].find("last_error")->as_string().find("503"), std::string::npos);
  EXPECT_FALSE(row[0].find("next_attempt_at")->is_null());
  EXPECT_EQ(events(run, "module.retrying"), 3);
  EXPECT_EQ(events(run, "module.failed"), 1);
  auto attempts = rows("SELECT payload FROM workflow_events WHERE run_id = $1 AND type = 'module.retrying' ORDER BY id",
                       {run});
  for (size_t i = 0; i < attempts.size(); ++i)
    EXPECT_EQ(attempts[i].find("payload")->find("retryAttempt")->as_int(), int64_t(i + 1));
  EXPECT_EQ(rows("SELECT status FROM workflow_runs WHERE id = $1", {run})[0].find("status")->as_string(), "failed");
}

TEST_F(WorkflowRuns, ARetryableFailureThenSuccessSucceedsWithTheSameKey) {
  service_.script("POST", kPath,
                  {FakeResponse::text(502, ""), FakeResponse::retry_after(429, "0"), FakeResponse::json(200, "{}")});
  const std::string run = create_run("flaky", 3);
  ASSERT_EQ(run_module(run, "k").status, 202);
  ASSERT_TRUE(module_ends(run, "succeeded"));
  const auto reqs = service_.requests("POST", kPath);
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].header("idempotency-key"), reqs[2].header("idempotency-key"));
  EXPECT_EQ(reqs[0].body, reqs[2].body);
  EXPECT_EQ(rows("SELECT retry_count FROM workflow_run_modules WHERE run_id = $1", {run})[0].find("retry_count")->as_int(),
            2);
  EXPECT_EQ(count("SELECT count(*) AS n FROM workflow_artifacts WHERE run_id = $1 AND artifact_key = 'result'", {run}),
            1);
}

TEST_F(WorkflowRuns, ANonRetryable4xxFailsAtOnce) {
  service_.route("POST", kPath, FakeResponse::text(422, "bad input"));
  const std::string run = create_run("reject", 3);
  ASSERT_EQ(run_module(run, "k").status, 202);
  ASSERT_TRUE(module_ends(run, "failed"));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(service_.requests("POST", kPath).size(), 1u);
  EXPECT_EQ(rows("SELECT retry_count FROM workflow_run_modules WHERE run_id = $1", {run})[0].find("retry_count")->as_int(),
            0);
  EXPECT_EQ(events(run, "module.retrying"), 0);
  EXPECT_EQ(events(run, "module.failed"), 1);
}

TEST_F(WorkflowRuns, TheRouteAnswers202WithinASecondWhileTheModuleTakesThreeSeconds) {
  service_.route("POST", kPath, FakeResponse::json(200, R"({"output":"slow"})").after(3s));
  const std::string run = create_run("slow");
  auto r = run_module(run, "k");
  ASSERT_EQ(r.status, 202) << r.raw;
  EXPECT_LT(r.seconds, 1.0);
  EXPECT_EQ(r.body.find("commandId")->as_string().rfind("cmd-", 0), 0u);
  ASSERT_TRUE(eventually([&] { return service_.requests("POST", kPath).size() == 1; }));
  auto status = request("GET", "/workflow-runs/" + run);  // the run answers while its module waits
  EXPECT_EQ(status.status, 200);
  EXPECT_LT(status.seconds, 1.0);
  EXPECT_EQ(module_status(run), "running");
  ASSERT_TRUE(module_ends(run, "succeeded"));
}

TEST_F(WorkflowRuns, AKillMidCallLeavesExactlyOneRecordedEffectAndReusesTheKey) {
  service_.route("POST", kPath, FakeResponse::hang());
  const std::string run = create_run("crash");
  ASSERT_EQ(run_module(run, "k").status, 202);
  ASSERT_TRUE(eventually([&] { return service_.requests("POST", kPath).size() == 1; }));
  stop_node();  // killed while the service call is in flight
  service_.route("POST", kPath,
                 FakeResponse::json(200, R"({"output":{"ok":true},"artifacts":[{"key":"plan","content":"p"}]})"));
  start_node();  // the workflow resumes on load
  ASSERT_TRUE(module_ends(run, "succeeded"));
  ASSERT_TRUE(actor_settles(run));
  const auto reqs = service_.requests("POST", kPath);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].header("idempotency-key"), reqs[1].header("idempotency-key"));
  EXPECT_EQ(reqs[0].header("x-request-id"), reqs[1].header("x-request-id"));
  EXPECT_EQ(events(run, "module.started"), 1);
  EXPECT_EQ(events(run, "module.succeeded"), 1);
  EXPECT_EQ(count("SELECT count(*) AS n FROM workflow_artifacts WHERE run_id = $1", {run}), 1);
  EXPECT_EQ(rows("SELECT output FROM workflow_run_modules WHERE run_id = $1", {run})[0].find("output")->find("ok")->as_bool(),
            true);
}

TEST_F(WorkflowRuns, PauseDefersModuleRunsUntilResume) {
  service_.route("POST", kPath, FakeResponse::json(200, "{}"));
  const std::string run = create_run("pause");
  auto paused = request("POST", "/workflow-runs/" + run + "/pause");
  ASSERT_EQ(paused.status, 202) << paused.raw;
  ASSERT_TRUE(eventually([&] {
    return rows("SELECT status FROM workflow_runs WHERE id = $1", {run})[0].find("status")->as_string() == "paused";
  }));
  ASSERT_EQ(run_module(run, "k").status, 202);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(service_.requests("POST", kPath).empty()) << "a paused run starts no module";
  EXPECT_EQ(module_status(run), "pending");
  ASSERT_EQ(request("POST", "/workflow-runs/" + run + "/resume").status, 202);
  ASSERT_TRUE(module_ends(run, "succeeded"));
  EXPECT_EQ(service_.requests("POST", kPath).size(), 1u);
  EXPECT_EQ(events(run, "run.paused"), 1);
  EXPECT_EQ(events(run, "run.resumed"), 1);
}

TEST_F(WorkflowRuns, UnknownRunsAndModulesAndMissingConfigAreClearErrors) {
  const std::string run = create_run("errors");
  EXPECT_EQ(request("GET", "/workflow-runs/00000000-0000-5000-8000-000000000000").status, 404);
  EXPECT_EQ(request("GET", "/workflow-runs/not-a-uuid").status, 404);
  EXPECT_EQ(run_module(run, "k", "nope").status, 404);
  EXPECT_EQ(request("POST", "/workflow-runs/" + run + "/modules/prep/run").status, 400) << "no Idempotency-Key";
  auto r = request("POST", "/workflow-runs",
                   R"({"userId":"u","idempotencyKey":"cfg","modules":[{"id":"m","service":"matchmaking"}]})");
  ASSERT_EQ(r.status, 201) << r.raw;
  auto no_cfg = run_module(r.body.find("runId")->as_string(), "k", "m");
  EXPECT_EQ(no_cfg.status, 503) << no_cfg.raw;
  EXPECT_EQ(no_cfg.body.find("metadata")->find("configKey")->as_string(), "MATCHMAKING_SERVICE_URL");
  auto no_def = request("POST", "/workflow-runs", R"({"userId":"u","idempotencyKey":"d","definitionId":"nope"})");
  EXPECT_EQ(no_def.status, 404) << no_def.raw;
}

TEST_F(WorkflowRuns, KeylessCommandIdsResumeAfterARestart) {
  const std::string run = create_run("seq");
  auto first = request("POST", "/workflow-runs/" + run + "/pause");
  ASSERT_EQ(first.status, 202);
  EXPECT_EQ(first.body.find("commandId")->as_string(), "cmd-1-" + run);
  ASSERT_TRUE(eventually([&] {
    return rows("SELECT status FROM workflow_runs WHERE id = $1", {run})[0].find("status")->as_string() == "paused";
  }));
  stop_node();
  start_node();
  auto second = request("POST", "/workflow-runs/" + run + "/resume");
  ASSERT_EQ(second.status, 202);
  EXPECT_EQ(second.body.find("commandId")->as_string(), "cmd-2-" + run);
  ASSERT_TRUE(eventually([&] {
    return rows("SELECT status FROM workflow_runs WHERE id = $1", {run})[0].find("status")->as_string() == "running";
  }));
}
