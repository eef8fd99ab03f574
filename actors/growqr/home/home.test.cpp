// The portal routes (/users, /agents, /git, /actors/runtime, /home) against
// real Postgres, the node's actors and a dev-mode memory repository.
#include <filesystem>

#include "actors/growqr/missions/growqr_test_env.hpp"

namespace anvil::growqr {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string str(const Value& v, std::string_view k) {
  const Value* f = v.find(k);
  return f && f->is_string() ? f->as_string() : "";
}

class HomeRoutes : public testing::GrowqrTest {
 protected:
  void SetUp() override {
    memory_dir_ = anvil::testing::temp_dir("home-memory");
    config_["GROWQR_MEMORY_DIR"] = memory_dir_;
    GrowqrTest::SetUp();
  }
  void TearDown() override {
    GrowqrTest::TearDown();
    std::filesystem::remove_all(memory_dir_);
  }
  Headers as(const std::string& user) { return {{"x-user-id", user}, {"content-type", "application/json"}}; }
  std::string memory_dir_;
};

TEST_F(HomeRoutes, TheProfileIsMirroredOnFirstSightAndUpdated) {
  auto me = request("GET", "/users/me", "", as("u_home1"));
  ASSERT_EQ(me.status, 200) << me.raw;
  EXPECT_EQ(str(me.body, "id"), "u_home1");
  EXPECT_EQ(count("SELECT count(*) AS n FROM users WHERE id = 'u_home1'"), 1);
  auto up = request("PATCH", "/users/me", R"({"displayName":"Ada","profile":{"title":"PM"}})", as("u_home1"));
  ASSERT_EQ(up.status, 200) << up.raw;
  EXPECT_EQ(str(up.body, "displayName"), "Ada");
  auto bad = request("PATCH", "/users/me", R"({"displayName":5})", as("u_home1"));
  EXPECT_EQ(bad.status, 400) << bad.raw;
  EXPECT_EQ(request("GET", "/users/me").status, 401);
}

TEST_F(HomeRoutes, TheAgentCatalogNamesTheAgentsTools) {
  auto r = request("GET", "/agents");
  ASSERT_EQ(r.status, 200) << r.raw;
  const Value& agent = r.body.find("agents")->as_array().at(0);
  EXPECT_EQ(str(agent, "name"), "growAgent");
  EXPECT_EQ(agent.find("tools")->as_array().size(), 4u);
}

TEST_F(HomeRoutes, GitRoutesWriteReadListAndDeleteMemoryFiles) {
  auto put = request("PUT", "/git/file?path=notes/a.md", R"({"content":"# A"})", as("u_git"));
  ASSERT_EQ(put.status, 200) << put.raw;
  auto get = request("GET", "/git/file?path=notes/a.md", "", as("u_git"));
  ASSERT_EQ(get.status, 200) << get.raw;
  EXPECT_EQ(str(get.body, "content"), "# A");
  auto list = request("GET", "/git/files?prefix=notes/", "", as("u_git"));
  ASSERT_EQ(list.status, 200) << list.raw;
  EXPECT_EQ(*list.body.find("paths"), Value(Array{Value("notes/a.md")}));
  EXPECT_EQ(request("GET", "/git/file?path=notes/a.md", "", as("someone_else")).status, 404);
  EXPECT_EQ(request("PUT", "/git/file?path=../etc/passwd", R"({"content":"x"})", as("u_git")).status, 400);
  EXPECT_EQ(request("GET", "/git/file", "", as("u_git")).status, 400);
  ASSERT_EQ(request("DELETE", "/git/file?path=notes/a.md", "", as("u_git")).status, 200);
  EXPECT_EQ(request("GET", "/git/file?path=notes/a.md", "", as("u_git")).status, 404);
}

TEST_F(HomeRoutes, TheAgentRuntimeIsProvisionedAndStoppedThroughTheProvider) {
  auto none = request("POST", "/actors/runtime", "", as("u_rt"));
  EXPECT_EQ(none.status, 503) << "no OPENCODE_URL: " << none.raw;
  config_["OPENCODE_URL"] = "http://127.0.0.1:4096";
  auto up = request("POST", "/actors/runtime", "", as("u_rt"));
  ASSERT_EQ(up.status, 200) << up.raw;
  EXPECT_EQ(str(up.body, "opencodeUrl"), "http://127.0.0.1:4096");
  EXPECT_TRUE(eventually([&] { return str(request("GET", "/actors/runtime", "", as("u_rt")).body, "status") == "running"; }));
  auto down = request("DELETE", "/actors/runtime", "", as("u_rt"));
  ASSERT_EQ(down.status, 200) << down.raw;
  EXPECT_TRUE(eventually([&] { return str(request("GET", "/actors/runtime", "", as("u_rt")).body, "status") == "stopped"; }));
}

TEST_F(HomeRoutes, HomeShowsMissionsAndConversations) {
  ASSERT_EQ(request("POST", "/missions/interview-to-offer/start", R"({"missionInstanceId":"h-1"})", as("u_h")).status, 202);
  ASSERT_EQ(request("POST", "/conversations", R"({"title":"t"})", as("u_h")).status, 201);
  auto r = request("GET", "/home", "", as("u_h"));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body.find("conversations")->as_array().size(), 1u);
  EXPECT_FALSE(r.body.find("missions")->as_array().empty());
  auto n = request("GET", "/home/notifications?limit=5", "", as("u_h"));
  EXPECT_EQ(n.status, 200) << n.raw;
}

}  // namespace
}  // namespace anvil::growqr
