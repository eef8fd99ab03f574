// The manager API on a real node (RocksDB, commit pipeline): what it lists
// survives a crash.
#include "engine-api/manager_api.hpp"

#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "base/value/json.hpp"
#include "runtime/test_node.hpp"

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
