// The inspector routes (/gateway/{id}/inspector/…) and the admin operation
// routes through the real Router over an in-process node: rivetkit's shapes,
// and who may use them.
#include "gateway/inspector_routes.hpp"

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"
#include "base/value/json.hpp"
#include "engine-api/manager_api.hpp"
#include "gateway/router.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using namespace anvil::gateway;
using anvil::testing::Node;

namespace {

// A node behind the real router, with a client token and an admin token.
struct Gateway {
  explicit Gateway(const std::string& name)
      : node(anvil::testing::temp_dir(name), actors::fixture_registry()),
        api(node.rt()),
        actors(node.rt()),
        access(AccessOptions{"client-tok", "admin-tok"}),
        router(node.rt(), api, actors, nullptr, &access) {}

  http::Response send(std::string method, std::string path, std::optional<std::string> bearer = std::nullopt,
                      std::string body = {}) {
    http::Request req;
    req.method = std::move(method);
    auto q = path.find('?');
    if (q != std::string::npos) {
      req.query = path.substr(q + 1);
      path.resize(q);
    }
    req.path = std::move(path);
    if (bearer) req.headers.emplace_back("authorization", "Bearer " + *bearer);
    if (!body.empty()) req.headers.emplace_back("content-type", "application/json");
    req.body = std::move(body);
    return node.run(router.handle(std::move(req)));
  }
  Value json_of(const http::Response& r) {
    auto v = json::parse(std::string(r.body.begin(), r.body.end()), /*revive=*/false);
    if (!v.ok()) throw std::runtime_error("not JSON: " + std::string(r.body.begin(), r.body.end()));
    return *v;
  }
  std::string token(const std::string& id) { return node.rt().inspector_token(id).value_or(""); }

  Node node;
  ManagerApi api;
  ActorRoutes actors;
  AccessGuard access;
  Router router;
};

}  // namespace

TEST(InspectorRoutes, WithoutABearerTokenTheAnswerIsRivetsUnauthorized) {
  Gateway g("insp-noauth");
  const std::string id = g.node.get_or_create("counter", {"a"});
  auto r = g.send("GET", "/gateway/" + id + "/inspector/state");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(g.json_of(r), obj({{"group", "inspector"},
                               {"code", "unauthorized"},
                               {"message", "Inspector request requires a valid bearer token"},
                               {"metadata", Value()}}));
}

TEST(InspectorRoutes, AnotherActorsTokenOrTheClientTokenIsRefused) {
  Gateway g("insp-wrong");
  const std::string id = g.node.get_or_create("counter", {"a"});
  const std::string other = g.node.get_or_create("counter", {"b"});
  EXPECT_EQ(g.send("GET", "/gateway/" + id + "/inspector/state", g.token(other)).status, 401);
  EXPECT_EQ(g.send("GET", "/gateway/" + id + "/inspector/state", "client-tok").status, 401);
}

TEST(InspectorRoutes, TheActorsOwnTokenAndTheAdminTokenOpenIt) {
  Gateway g("insp-ok");
  const std::string id = g.node.get_or_create("counter", {"a"});
  ASSERT_TRUE(g.node.call(id, "increment", {Value(5)}).ok());
  auto own = g.send("GET", "/gateway/" + id + "/inspector/state", g.token(id));
  EXPECT_EQ(own.status, 200);
  EXPECT_EQ(g.json_of(own), obj({{"state", obj({{"count", 5}})}, {"isStateEnabled", true}}));
  EXPECT_EQ(g.send("GET", "/gateway/" + id + "/inspector/state", "admin-tok").status, 200);
}

TEST(InspectorRoutes, PatchStateReplacesTheStateDurably) {
  Gateway g("insp-patch");
  const std::string id = g.node.get_or_create("counter", {"a"});
  auto r = g.send("PATCH", "/gateway/" + id + "/inspector/state", g.token(id), R"({"state":{"count":42}})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(g.json_of(r), obj({{"ok", true}}));
  EXPECT_EQ(g.node.call(id, "getCount")->as_int(), 42);
}

TEST(InspectorRoutes, RpcsListTheActionsSorted) {
  Gateway g("insp-rpcs");
  const std::string id = g.node.get_or_create("counter", {"a"});
  auto r = g.json_of(g.send("GET", "/gateway/" + id + "/inspector/rpcs", g.token(id)));
  EXPECT_EQ(r, obj({{"rpcs", arr({"destroy", "echo", "getCount", "goToSleep", "increment", "incrementAsync",
                                  "whoAmI"})}}));
}

TEST(InspectorRoutes, AnActionRunsAndAnUnknownOneIsRivetsActionNotFound) {
  Gateway g("insp-action");
  const std::string id = g.node.get_or_create("counter", {"a"});
  auto r = g.send("POST", "/gateway/" + id + "/inspector/action/increment", g.token(id), R"({"args":[3]})");
  EXPECT_EQ(g.json_of(r), obj({{"output", 3}}));
  auto missing = g.send("POST", "/gateway/" + id + "/inspector/action/nope", g.token(id), R"({"args":[]})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(g.json_of(missing).find("code")->as_string(), "action_not_found");
  EXPECT_EQ(g.json_of(missing).find("group")->as_string(), "action");
}

TEST(InspectorRoutes, QueuePostListAndDeleteRoundTrip) {
  Gateway g("insp-queue");
  const std::string id = g.node.get_or_create("counter", {"a"});
  const std::string base = "/gateway/" + id + "/inspector/queue";
  auto posted = g.json_of(g.send("POST", base, g.token(id), R"({"name":"inbox","body":{"x":1}})"));
  EXPECT_EQ(posted.find("name")->as_string(), "inbox");
  auto listed = g.json_of(g.send("GET", base + "?limit=10", g.token(id)));
  EXPECT_EQ(listed.find("size")->as_int(), 1);
  const Value& msg = listed.find("messages")->as_array()[0];
  EXPECT_EQ(msg.find("body"), nullptr);  // rivetkit lists no bodies
  EXPECT_EQ(msg.find("name")->as_string(), "inbox");
  EXPECT_EQ(g.json_of(g.send("DELETE", base, g.token(id))), Value(Object{}));
  EXPECT_EQ(g.json_of(g.send("GET", base, g.token(id))).find("size")->as_int(), 0);
}

TEST(InspectorRoutes, AQueueMessageWithoutANameIsRefused) {
  Gateway g("insp-qname");
  const std::string id = g.node.get_or_create("counter", {"a"});
  auto r = g.send("POST", "/gateway/" + id + "/inspector/queue", g.token(id), R"({"body":1})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(g.json_of(r).find("message")->as_string(), "Queue message name must not be empty");
}

TEST(InspectorRoutes, AnActorWithoutAWorkflowSaysSo) {
  Gateway g("insp-nowf");
  const std::string id = g.node.get_or_create("counter", {"a"});
  EXPECT_EQ(g.json_of(g.send("GET", "/gateway/" + id + "/inspector/workflow-history", g.token(id))),
            obj({{"history", Value()}, {"workflowState", Value()}, {"isWorkflowEnabled", false}}));
}

TEST(InspectorRoutes, ReplayWhileTheWorkflowRunsIsRivetsWorkflowInFlight) {
  Gateway g("insp-replay");
  const std::string id = g.node.get_or_create("worker", {"a"});
  g.node.send(id, "jobs", obj({{"id", 1}, {"value", 2}}));
  g.node.wait_for(id, "getProcessed", [](const Value& v) { return v.as_array().size() == 1; });
  auto r = g.send("POST", "/gateway/" + id + "/inspector/workflow/replay", g.token(id), "{}");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(g.json_of(r).find("code")->as_string(), "workflow_in_flight");
}

TEST(InspectorRoutes, DatabaseRoutesReadAndWriteTheActorsDatabase) {
  Gateway g("insp-db");
  const std::string id = g.node.get_or_create("dbCounter", {"a"});
  const std::string base = "/gateway/" + id + "/inspector/database";
  auto exec = g.send("POST", base + "/execute", g.token(id), R"j({"sql":"INSERT INTO adds (n) VALUES (?)","args":[9]})j");
  EXPECT_EQ(exec.status, 200);
  auto schema = g.json_of(g.send("GET", base + "/schema", g.token(id)));
  const Array& tables = schema.find("schema")->find("tables")->as_array();
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0].find("table")->find("name")->as_string(), "adds");
  EXPECT_EQ(tables[0].find("records")->as_int(), 1);
  auto rows = g.json_of(g.send("GET", base + "/rows?table=adds", g.token(id)));
  EXPECT_EQ(rows.find("rows")->as_array()[0].find("n")->as_int(), 9);
  EXPECT_EQ(g.send("GET", base + "/rows", g.token(id)).status, 400);
  EXPECT_EQ(g.send("POST", base + "/execute", g.token(id), "{}").status, 400);
}

TEST(InspectorRoutes, ExecuteBindsNamedPropertiesAsRivetkitDoes) {
  Gateway g("insp-db-named");
  const std::string id = g.node.get_or_create("dbCounter", {"a"});
  const std::string base = "/gateway/" + id + "/inspector/database";
  // A bare key binds :n, @n and $n; a prefixed key binds that spelling.
  EXPECT_EQ(g.send("POST", base + "/execute", g.token(id), R"j({"sql":"INSERT INTO adds (n) VALUES (:n)","properties":{"n":5}})j").status, 200);
  EXPECT_EQ(g.send("POST", base + "/execute", g.token(id), R"j({"sql":"INSERT INTO adds (n) VALUES (@n)","properties":{"@n":6}})j").status, 200);
  auto rows = g.json_of(g.send("POST", base + "/execute", g.token(id),
                               R"j({"sql":"SELECT n FROM adds WHERE n >= $low ORDER BY n","properties":{"low":5}})j"));
  const Array& got = rows.find("rows")->as_array();
  ASSERT_EQ(got.size(), 2u) << json::dump(rows);
  EXPECT_EQ(got[0].find("n")->as_int(), 5);
  EXPECT_EQ(got[1].find("n")->as_int(), 6);

  auto missing = g.send("POST", base + "/execute", g.token(id), R"j({"sql":"SELECT :absent","properties":{"n":1}})j");
  EXPECT_EQ(g.json_of(missing).find("code")->as_string(), "invalid_parameter");
  auto positional = g.send("POST", base + "/execute", g.token(id), R"j({"sql":"SELECT ?","properties":{"n":1}})j");
  EXPECT_EQ(g.json_of(positional).find("code")->as_string(), "invalid_parameter");
  EXPECT_EQ(g.send("POST", base + "/execute", g.token(id), R"j({"sql":"SELECT 1","args":[],"properties":{}})j").status, 400);
}

TEST(InspectorRoutes, AnswersNameTheActorButARefusalDoesNot) {
  Gateway g("insp-headers");
  const std::string id = g.node.get_or_create("counter", {"h"});
  auto ok = g.send("GET", "/gateway/" + id + "/inspector/state", g.token(id));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.header("x-rivet-actor").value_or(""), id);
  EXPECT_EQ(ok.header("x-rivet-actor-key").value_or(""), "h");
  EXPECT_TRUE(ok.header("x-rivet-actor-generation"));
  auto refused = g.send("GET", "/gateway/" + id + "/inspector/state");
  EXPECT_EQ(refused.status, 401);
  EXPECT_FALSE(refused.header("x-rivet-actor"));
  EXPECT_FALSE(refused.header("x-rivet-actor-key"));
}

TEST(InspectorRoutes, AnUnknownInspectorPathIsRivetsNotFound) {
  Gateway g("insp-404");
  const std::string id = g.node.get_or_create("counter", {"a"});
  auto r = g.send("GET", "/gateway/" + id + "/inspector/nope", g.token(id));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(g.json_of(r).find("message")->as_string(), "Inspector route was not found");
}

TEST(InspectorRoutes, TheKvKeyThreeOfTheEngineApiIsTheInspectorTokenForTheAdmin) {
  Gateway g("insp-kv");
  const std::string id = g.node.get_or_create("counter", {"a"});
  EXPECT_EQ(g.send("GET", "/actors/" + id + "/kv/keys/Aw%3D%3D", "client-tok").status, 403);
  auto r = g.json_of(g.send("GET", "/actors/" + id + "/kv/keys/Aw%3D%3D", "admin-tok"));
  auto token = json::base64_decode(r.find("value")->as_string());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(std::string(token->begin(), token->end()), g.token(id));
}

TEST(AdminOperations, ConnectionsQueueAndScheduleRoutesNeedTheAdminToken) {
  Gateway g("insp-admin");
  const std::string id = g.node.get_or_create("scheduler", {"a"});
  const std::string base = "/admin/actors/" + id;
  EXPECT_EQ(g.send("GET", base + "/connections", "client-tok").status, 403);
  EXPECT_EQ(g.json_of(g.send("GET", base + "/connections", "admin-tok")), Value(Array{}));
  auto sent = g.send("POST", base + "/queue", "admin-tok", R"({"name":"q","body":1})");
  EXPECT_EQ(sent.status, 200);
  EXPECT_EQ(g.json_of(g.send("GET", base + "/queue", "admin-tok")).find("size")->as_int(), 1);
  EXPECT_EQ(g.json_of(g.send("DELETE", base + "/queue", "admin-tok")).find("purged")->as_int(), 1);
  ASSERT_TRUE(g.node.call(id, "scheduleAfter", {Value(600000), Value("x")}).ok());
  auto sched = g.json_of(g.send("GET", base + "/schedules", "admin-tok"));
  const std::string sid = sched.as_array()[0].find("id")->as_string();
  EXPECT_EQ(g.json_of(g.send("DELETE", base + "/schedules/" + sid, "admin-tok")), obj({{"cancelled", true}}));
}

TEST(InspectorRoutes, AnInspectorRequestByNameAndKeyNeedsTheClientTokenAndCreatesNothingWithoutIt) {
  Gateway g("insp-bykey");
  const std::string path = "/gateway/counter/inspector/state?rvt-namespace=default&rvt-method=getOrCreate&rvt-key=zz";
  auto r = g.send("GET", path);
  EXPECT_EQ(r.status, 403);
  EXPECT_FALSE(g.node.rt().find_by_key("default", "counter", {"zz"}).has_value());
}
