// The manager API on a real node (RocksDB, commit pipeline): what it lists
// survives a crash.
#include "engine-api/manager_api.hpp"

#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "base/value/json.hpp"
#include "runtime/test_node.hpp"
#include "storage/fault_fs.hpp"

using namespace anvil;
using anvil::testing::temp_dir;

namespace {

const Registry& registry() {
  static const Registry reg = [] {
    Registry r;
    ActorDefinition def("counter");
    def.initial_state(obj({{"count", 0}}));
    r.add(std::move(def));
    return r;
  }();
  return reg;
}

// GET /actors?<query> → the listed actor ids.
std::vector<std::string> listed(anvil::testing::Node& n, ManagerApi& api, const std::string& query) {
  http::Request req;
  req.method = "GET";
  req.path = "/actors";
  req.query = query;
  http::Response res = n.run(api.handle(req, "/actors"));
  EXPECT_EQ(res.status, 200) << res.body;
  auto body = json::parse(res.body, /*revive=*/false);
  std::vector<std::string> ids;
  if (!body.ok()) return ids;
  for (const auto& a : body->find("actors")->as_array()) ids.push_back(a.find("actor_id")->as_string());
  return ids;
}

}  // namespace

TEST(ManagerApi, EveryListedActorStillExistsAfterACrashEvenIfItsCreateWasHeldBack) {
  auto dir = temp_dir("list-durable");
  std::vector<std::string> by_name, by_key, by_id;
  std::string keyed_id, id_only;
  {
    anvil::testing::Node n(dir, registry());
    ManagerApi api(n.rt());
    // getOrCreate as the gateway's cold path does it: the create record is
    // held back for a first turn that never comes.
    auto create = [&](const std::string& key) {
      CreateRequest cr;
      cr.name = "counter";
      cr.key = {key};
      auto r = n.rt().get_or_create(cr, /*defer_commit=*/true);
      EXPECT_TRUE(r.ok());
      EXPECT_EQ(r->seq, 0u);  // nothing submitted yet
      return r->info.actor_id;
    };
    for (int i = 0; i < 3; ++i) create("k" + std::to_string(i));
    keyed_id = create("keyed");
    id_only = create("by-id");

    by_name = listed(n, api, "name=counter");
    by_key = listed(n, api, "name=counter&key=keyed");
    by_id = listed(n, api, "actor_ids=" + id_only);
    EXPECT_EQ(by_name.size(), 5u);
  }  // the node stops without a graceful shutdown
  anvil::testing::Node n(dir, registry());
  for (const auto& id : by_name) EXPECT_TRUE(n.rt().exists(id)) << id;
  ASSERT_EQ(by_key, std::vector<std::string>{keyed_id});
  EXPECT_TRUE(n.rt().exists(keyed_id));
  ASSERT_EQ(by_id, std::vector<std::string>{id_only});
  EXPECT_TRUE(n.rt().exists(id_only));
  std::filesystem::remove_all(dir);
}

namespace {

http::Response get_health(anvil::testing::Node& n, ManagerApi& api) {
  http::Request req;
  req.method = "GET";
  req.path = "/health";
  return n.run(api.handle(req, "/health"));
}

http::Response put_actor(anvil::testing::Node& n, ManagerApi& api, const std::string& key) {
  http::Request req;
  req.method = "PUT";
  req.path = "/actors";
  req.body = R"({"name":"counter","key":")" + key + R"(","runner_name_selector":"default","crash_policy":"sleep"})";
  return n.run(api.handle(req, "/actors"));
}

}  // namespace

TEST(ManagerApi, HealthIsOkWhileTheNodeTakesWrites) {
  auto dir = temp_dir("health-ok");
  anvil::testing::Node n(dir, registry());
  ManagerApi api(n.rt());
  auto res = get_health(n, api);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, R"({"status":"ok"})");
  std::filesystem::remove_all(dir);
}

TEST(ManagerApi, OnAFullDiskCreatesAre507AndHealthIsDegradedUntilSpaceReturns) {
  auto dir = temp_dir("health-full");
  auto fs = std::make_shared<storage::FaultFs>();
  {
    anvil::testing::Node n(dir, registry(), fs);
    ManagerApi api(n.rt());
    fs->inject(storage::FaultFs::Op::kAppend, storage::FaultFs::Fault::kNoSpace);
    auto created = put_actor(n, api, "full");
    EXPECT_EQ(created.status, 507) << created.body;
    EXPECT_NE(created.body.find("disk_full"), std::string::npos) << created.body;
    auto health = get_health(n, api);
    EXPECT_EQ(health.status, 503);
    EXPECT_EQ(health.body, R"({"status":"degraded","storage":"disk_full"})");

    fs->clear_faults();
    for (int i = 0; i < 300 && get_health(n, api).status != 200; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(get_health(n, api).status, 200);
    // The same key works now: its lost create is written again.
    auto again = put_actor(n, api, "full");
    EXPECT_EQ(again.status, 200) << again.body;
  }
  anvil::testing::Node n(dir, registry());
  EXPECT_EQ(n.rt().actor_count(), 1u);
  std::filesystem::remove_all(dir);
}

namespace {

http::Response admin(anvil::testing::Node& n, ManagerApi& api, const std::string& method, const std::string& path,
                     const std::string& query = "", const std::string& body = "") {
  http::Request req;
  req.method = method;
  req.path = path;
  req.query = query;
  req.body = body;
  return n.run(api.handle(req, path));
}

}  // namespace

TEST(ManagerApi, TheAdminListingShowsOnlyActorsWhoseCreateIsOnDisk) {
  auto dir = temp_dir("admin-durable");
  {
    anvil::testing::Node n(dir, registry());
    ManagerApi api(n.rt());
    ASSERT_EQ(put_actor(n, api, "stored").status, 200);
    CreateRequest cr;
    cr.name = "counter";
    cr.key = {"held-back"};
    ASSERT_TRUE(n.rt().get_or_create(cr, /*defer_commit=*/true).ok());  // not submitted
    auto res = admin(n, api, "GET", "/admin/actors");
    ASSERT_EQ(res.status, 200) << res.body;
    auto body = json::parse(res.body);
    ASSERT_TRUE(body.ok());
    const Array& actors = body->find("actors")->as_array();
    ASSERT_EQ(actors.size(), 1u);
    EXPECT_EQ(*actors[0].find("key"), arr({"stored"}));
    EXPECT_TRUE(body->find("cursor")->is_null());
  }
  std::filesystem::remove_all(dir);
}

TEST(ManagerApi, AdminRoutesRefuseBadParametersAndUnknownParts) {
  auto dir = temp_dir("admin-bad");
  {
    anvil::testing::Node n(dir, registry());
    ManagerApi api(n.rt());
    for (const char* q : {"limit=0", "limit=1001", "limit=x", "awake=maybe"})
      EXPECT_EQ(admin(n, api, "GET", "/admin/actors", q).status, 400) << q;
    EXPECT_EQ(admin(n, api, "GET", "/admin/actors/0000000000000000000000000").status, 404);
    EXPECT_EQ(admin(n, api, "GET", "/admin/actors/0000000000000000000000000/state").status, 404);
    ASSERT_EQ(put_actor(n, api, "a").status, 200);
    auto listed = json::parse(admin(n, api, "GET", "/admin/actors").body);
    const std::string id = listed->find("actors")->as_array()[0].find("id")->as_string();
    EXPECT_EQ(admin(n, api, "GET", "/admin/actors/" + id + "/frobs").status, 404);
    EXPECT_EQ(admin(n, api, "POST", "/admin/actors/" + id + "/sql", "", "{}").status, 400);
    EXPECT_EQ(admin(n, api, "PUT", "/admin/actors/" + id + "/state", "", "{nope").status, 400);
    auto set = admin(n, api, "PUT", "/admin/actors/" + id + "/state", "", R"({"count":9})");
    EXPECT_EQ(set.status, 200) << set.body;
    EXPECT_EQ(set.body, R"({"state":{"count":9}})");
    EXPECT_EQ(admin(n, api, "GET", "/admin/actors/" + id + "/state").body, R"({"count":9})");
  }
  std::filesystem::remove_all(dir);
}
