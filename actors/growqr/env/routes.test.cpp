// The run-time gates of the environment matrix, through the routes:
// /home/seed-demo (D27), admin routes (D28), service-token ingest (D26).
#include <gtest/gtest.h>

#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/missions/growqr_test_env.hpp"
#include "tests/fakes/jwks_fake.hpp"

namespace anvil::growqr {
namespace {

class EnvRoutes : public testing::GrowqrTest {
 protected:
  void SetUp() override {}  // each test boots with its own configuration
  void boot(AppConfig extra) {
    config_ = {{"CLERK_JWKS_URL", clerk_.jwks_url()}, {"CLERK_ISSUER", clerk_.issuer()}};
    for (auto& [k, v] : extra) config_[k] = v;
    GrowqrTest::SetUp();
  }
  std::vector<std::pair<std::string, std::string>> as(const std::string& user) {
    return {{"authorization", "Bearer " + clerk_.mint(user)}};
  }
  fakes::JwksFake clerk_;
};

TEST_F(EnvRoutes, DemoSeedingIsRefusedInProductionEvenForAnAdminWithTheFlag) {
  boot({{"APP_ENV", "production"}, {"DEMO_DATA_ENABLED", "true"}, {"ADMIN_USER_IDS", "admin_1"}});
  auto r = request("POST", "/home/seed-demo", "", as("admin_1"));
  EXPECT_EQ(r.status, 403) << r.raw;
}

TEST_F(EnvRoutes, DemoSeedingInStagingNeedsTheFlagAndAnAdmin) {
  boot({{"APP_ENV", "staging"}, {"ADMIN_USER_IDS", "admin_1"}});
  EXPECT_EQ(request("POST", "/home/seed-demo", "", as("admin_1")).status, 403) << "no DEMO_DATA_ENABLED";
}

TEST_F(EnvRoutes, DemoSeedingInStagingWithTheFlagStartsTheDemoMissionsForAnAdmin) {
  boot({{"APP_ENV", "staging"}, {"DEMO_DATA_ENABLED", "true"}, {"ADMIN_USER_IDS", "admin_1"}});
  EXPECT_EQ(request("POST", "/home/seed-demo", "", as("user_a")).status, 403) << "not an admin";
  EXPECT_EQ(request("POST", "/home/seed-demo", "").status, 401);
  auto r = request("POST", "/home/seed-demo", R"({"userId":"demo_user"})", as("admin_1"));
  ASSERT_EQ(r.status, 201) << r.raw;
  EXPECT_EQ(r.body.find("missions")->as_array().size(), 2u);
  auto state = call("growActor", {"demo_user"}, "getActiveState");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->find("missions")->as_array().size(), 2u);
}

TEST_F(EnvRoutes, TokenlessIngestIsRefusedOutsideDevelopment) {
  boot({{"APP_ENV", "test"}});
  EXPECT_EQ(request("POST", "/events", "{}").status, 401);
}

TEST_F(EnvRoutes, TheDevA2aKeyIsRefusedAsAServiceTokenOutsideDevelopment) {
  boot({{"APP_ENV", "test"}, {"SERVICE_TOKEN", "dev-a2a-key"}});
  EXPECT_EQ(request("GET", "/events", "", {{"authorization", "Bearer dev-a2a-key"}}).status, 401);
}

TEST_F(EnvRoutes, TheServiceTokenAdmitsIngestOutsideDevelopment) {
  boot({{"APP_ENV", "staging"}, {"SERVICE_TOKEN", "s3cret"}});
  EXPECT_EQ(request("GET", "/events", "", {{"authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(request("GET", "/events", "", {{"authorization", "Bearer wrong"}}).status, 401);
}

TEST_F(EnvRoutes, RequireAdminRefusesEveryoneWhenTheListIsEmpty) {
  boot({{"APP_ENV", "production"}});
  AppRequest req;
  req.headers = as("user_a");
  auto r = node_->run(require_admin(*host_, req));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "auth.forbidden");
}

TEST_F(EnvRoutes, RequireAdminAdmitsListedAdminsOnly) {
  boot({{"APP_ENV", "production"}, {"ADMIN_USER_IDS", "admin_1,admin_2"}});
  AppRequest req;
  req.headers = as("admin_2");
  auto ok = node_->run(require_admin(*host_, req));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "admin_2");
  req.headers = as("user_a");
  EXPECT_EQ(node_->run(require_admin(*host_, req)).error().qualified(), "auth.forbidden");
}

}  // namespace
}  // namespace anvil::growqr
