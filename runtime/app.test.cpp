// Applications: route matching, parameters, 405, the JSON error shape, and
// the ActorClient routes call actors through (real RocksDB).
#include "runtime/app_host.hpp"

#include <filesystem>

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"
#include "base/value/json.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using anvil::testing::temp_dir;

namespace {

Task<AppResponse> echo_params(AppContext&, AppRequest req) {
  Object o;
  for (auto& [k, v] : req.params) o.emplace_back(k, v);
  o.emplace_back("q", req.query_param("q").value_or("none"));
  co_return AppResponse::json(200, Value(std::move(o)));
}

Task<AppResponse> increment(AppContext& c, AppRequest req) {
  std::string name = "counter";
  std::string action = "increment";
  Array args{Value(5)};
  ActorKey key{req.params.at("key")};
  auto r = co_await c.actors().call(std::move(name), std::move(key), std::move(action), std::move(args));
  if (!r.ok()) co_return AppResponse::error(r.error());
  co_return AppResponse::json(200, *r);
}

Task<AppResponse> unknown_actor(AppContext& c, AppRequest) {
  std::string name = "nope";
  std::string action = "x";
  ActorKey key{std::string("k")};
  auto r = co_await c.actors().call(std::move(name), std::move(key), std::move(action), Array{});
  co_return r.ok() ? AppResponse::json(200, *r) : AppResponse::error(r.error());
}

AppDefinition test_app() {
  AppDefinition app("test");
  app.route("GET", "/things/:id/parts/:part", echo_params)
      .route("POST", "/counters/:key/increment", increment)
      .route("POST", "/unknown", unknown_actor);
  return app;
}

AppRequest request(std::string method, std::string path, std::string query = "") {
  AppRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

}  // namespace

TEST(Apps, ARoutePatternBindsItsParametersDecoded) {
  auto dir = temp_dir("app-params");
  Registry reg;
  actors::register_fixtures(reg);
  anvil::testing::Node n(dir, reg);
  AppDefinition app = test_app();
  AppHost host(n.rt(), {});
  host.add(app);
  auto res = n.run(host.handle(request("GET", "/things/a%20b/parts/7", "q=x+y&z=1")));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  auto body = json::parse(res->body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->find("id")->as_string(), "a b");
  EXPECT_EQ(body->find("part")->as_string(), "7");
  EXPECT_EQ(body->find("q")->as_string(), "x y");
  std::filesystem::remove_all(dir);
}

TEST(Apps, AnUnknownPathIsLeftToTheNodeAndAWrongMethodIs405) {
  auto dir = temp_dir("app-405");
  Registry reg;
  anvil::testing::Node n(dir, reg);
  AppDefinition app = test_app();
  AppHost host(n.rt(), {});
  host.add(app);
  EXPECT_FALSE(n.run(host.handle(request("GET", "/elsewhere"))));
  EXPECT_FALSE(n.run(host.handle(request("GET", "/things/1"))));
  auto res = n.run(host.handle(request("DELETE", "/things/1/parts/2")));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  std::filesystem::remove_all(dir);
}

TEST(Apps, RoutesCallActorsThroughTheClientAndTheResultIsDurable) {
  auto dir = temp_dir("app-client");
  Registry reg;
  actors::register_fixtures(reg);
  {
    anvil::testing::Node n(dir, reg);
    AppDefinition app = test_app();
    AppHost host(n.rt(), {});
    host.add(app);
    auto res = n.run(host.handle(request("POST", "/counters/k1/increment")));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "5");
  }
  anvil::testing::Node n(dir, reg);
  auto id = n.get_or_create("counter", {"k1"});
  EXPECT_EQ(n.call(id, "getCount")->as_int(), 5);
  std::filesystem::remove_all(dir);
}

TEST(Apps, AnErrorFromAnActorCallIsAnsweredInTheEngineErrorShape) {
  auto dir = temp_dir("app-error");
  Registry reg;
  anvil::testing::Node n(dir, reg);
  AppDefinition app = test_app();
  AppHost host(n.rt(), {});
  host.add(app);
  auto res = n.run(host.handle(request("POST", "/unknown")));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  auto body = json::parse(res->body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->find("group")->as_string(), "actor");
  EXPECT_EQ(body->find("code")->as_string(), "not_registered");
  std::filesystem::remove_all(dir);
}

TEST(Apps, ConfigComesFromTheHostsMap) {
  auto dir = temp_dir("app-config");
  Registry reg;
  anvil::testing::Node n(dir, reg);
  AppHost host(n.rt(), {{"GROWQR_ENV", "development"}});
  EXPECT_EQ(host.config("GROWQR_ENV"), "development");
  EXPECT_FALSE(host.config("MISSING"));
  std::filesystem::remove_all(dir);
}
