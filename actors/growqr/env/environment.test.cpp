// Seed 003's environment matrix (D24–D29): which environment is in force,
// what keeps a node from starting, and the gates that decide at run time.
#include <gtest/gtest.h>

#include <algorithm>

#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/env/environment.hpp"

namespace anvil::growqr {
namespace {

// A production configuration with every setting present and nothing local.
AppConfig complete(std::string env = "production") {
  return {{"APP_ENV", env},
          {"ANVIL_POSTGRES_URL", "postgresql://growqr@db.internal:5432/growqr"},
          {"CLERK_SECRET_KEY", "sk_live_x"},
          {"SERVICE_TOKEN", "a-long-random-token"},
          {"FRONTEND_ORIGIN", "https://app.growqr.example"},
          {"GITEA_TOKEN", "gitea-token"},
          {"INTERVIEW_SERVICE_URL", "https://interview.internal"},
          {"ROLEPLAY_SERVICE_URL", "https://roleplay.internal"},
          {"RESUME_SERVICE_URL", "https://resume.internal"}};
}

bool names(const std::vector<std::string>& problems, std::string_view what) {
  return std::any_of(problems.begin(), problems.end(),
                     [&](const std::string& p) { return p.find(what) != std::string::npos; });
}

Environment env_of(AppConfig cfg) { return environment_of(lookup_in(cfg)).value(); }

TEST(Environments, AppEnvDecidesAndGrowqrEnvIsAccepted) {
  EXPECT_EQ(env_of({{"APP_ENV", "staging"}}), Environment::staging);
  EXPECT_EQ(env_of({{"GROWQR_ENV", "demo"}}), Environment::demo);
  EXPECT_EQ(env_of({{"APP_ENV", "test"}, {"GROWQR_ENV", "production"}}), Environment::test);
  EXPECT_EQ(env_of({}), Environment::development);
}

TEST(Environments, NodeEnvChangesNothing) {
  EXPECT_EQ(env_of({{"NODE_ENV", "production"}}), Environment::development);
  EXPECT_TRUE(check_environment({{"NODE_ENV", "production"}}).empty());
}

TEST(Environments, AnUnknownEnvironmentIsAStartupError) {
  auto problems = check_environment({{"APP_ENV", "prod"}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(names(problems, "`prod`"));
}

TEST(Environments, ProductionNamesEveryMissingSetting) {
  auto problems = check_environment({{"APP_ENV", "production"}});
  for (std::string_view key : {"ANVIL_POSTGRES_URL", "CLERK_SECRET_KEY", "SERVICE_TOKEN", "FRONTEND_ORIGIN", "GITEA_TOKEN",
                               "INTERVIEW_SERVICE_URL", "ROLEPLAY_SERVICE_URL", "RESUME_SERVICE_URL"})
    EXPECT_TRUE(names(problems, key)) << key;
  EXPECT_EQ(problems.size(), 8u);
}

TEST(Environments, ACompleteProductionConfigurationStarts) {
  auto problems = check_environment(complete());
  EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST(Environments, StagingAndDemoFailLikeProduction) {
  for (std::string env : {"staging", "demo"}) {
    AppConfig cfg = complete(env);
    cfg.erase("CLERK_SECRET_KEY");
    auto problems = check_environment(cfg);
    ASSERT_EQ(problems.size(), 1u) << env;
    EXPECT_TRUE(names(problems, "CLERK_SECRET_KEY is required in " + env));
  }
}

TEST(Environments, DevelopmentAndTestNeedNoSettings) {
  EXPECT_TRUE(check_environment({{"APP_ENV", "development"}}).empty());
  EXPECT_TRUE(check_environment({{"APP_ENV", "test"}}).empty());
}

TEST(Environments, OnlyEnabledServicesNeedAUrl) {
  AppConfig cfg = complete();
  cfg.erase("ROLEPLAY_SERVICE_URL");
  cfg.erase("RESUME_SERVICE_URL");
  cfg["GROWQR_SERVICES"] = "interview, social-branding";
  auto problems = check_environment(cfg);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(names(problems, "SOCIAL_BRANDING_SERVICE_URL"));
  cfg["GROWQR_SERVICES"] = "none";
  EXPECT_TRUE(check_environment(cfg).empty());
}

TEST(Environments, AnyUrlPointingAtThisHostIsRefusedOutsideDevelopment) {
  AppConfig cfg = complete();
  cfg["FRONTEND_ORIGIN"] = "http://localhost:3000";
  cfg["INTERVIEW_SERVICE_URL"] = "http://host.docker.internal:8001";
  cfg["ANVIL_POSTGRES_URL"] = "postgresql://growqr:pw@127.0.0.1:5432/growqr";
  cfg["GITEA_URL"] = "http://[::1]:3000";
  auto problems = check_environment(cfg);
  EXPECT_EQ(problems.size(), 4u);
  for (std::string_view key : {"FRONTEND_ORIGIN", "INTERVIEW_SERVICE_URL", "ANVIL_POSTGRES_URL", "GITEA_URL"})
    EXPECT_TRUE(names(problems, std::string(key) + " points at this host")) << key;
  cfg["APP_ENV"] = "development";
  EXPECT_TRUE(check_environment(cfg).empty());
}

TEST(Environments, ALocalDemoMayUseLocalUrls) {
  AppConfig cfg = complete("demo");
  cfg["FRONTEND_ORIGIN"] = "http://localhost:3000";
  EXPECT_EQ(check_environment(cfg).size(), 1u);
  cfg["DEMO_LOCAL"] = "true";
  EXPECT_TRUE(check_environment(cfg).empty());
}

TEST(Environments, DevFallbacksAreRefusedOutsideDevelopment) {
  for (std::string env : {"test", "staging", "production"}) {
    AppConfig cfg = complete(env);
    cfg["SERVICE_TOKEN"] = "dev-a2a-key";
    cfg["A2A_ALLOWED_KEY"] = "dev-a2a-key";
    cfg["GITEA_ADMIN_PASSWORD"] = "growqr-admin-dev";
    auto problems = check_environment(cfg);
    EXPECT_EQ(problems.size(), 3u) << env;
    EXPECT_TRUE(names(problems, "SERVICE_TOKEN is the development fallback"));
    EXPECT_TRUE(names(problems, "A2A_ALLOWED_KEY"));
    EXPECT_TRUE(names(problems, "GITEA_ADMIN_PASSWORD"));
  }
  EXPECT_TRUE(check_environment({{"SERVICE_TOKEN", "dev-a2a-key"}, {"GITEA_ADMIN_PASSWORD", "growqr-admin-dev"}}).empty());
}

TEST(Environments, TheOpenCodeImageMustBePinned) {
  AppConfig cfg = complete();
  for (std::string img : {"growqr/opencode:dev", "ghcr.io/anomalyco/opencode:latest", "ghcr.io/anomalyco/opencode"}) {
    cfg["OPENCODE_IMAGE"] = img;
    EXPECT_TRUE(names(check_environment(cfg), "OPENCODE_IMAGE")) << img;
  }
  for (std::string img : {"growqr/opencode:1.4.2", "registry:5000/opencode@sha256:abc"}) {
    cfg["OPENCODE_IMAGE"] = img;
    EXPECT_TRUE(check_environment(cfg).empty()) << img;
  }
}

TEST(Environments, TheProcessSandboxProviderIsRefusedOutsideDevelopmentAndTest) {
  AppConfig cfg = complete();
  cfg["SANDBOX_PROVIDER"] = "process";
  EXPECT_TRUE(names(check_environment(cfg), "SANDBOX_PROVIDER=process"));
  cfg["SANDBOX_PROVIDER"] = "docker";
  EXPECT_TRUE(check_environment(cfg).empty());
  EXPECT_TRUE(check_environment({{"APP_ENV", "test"}, {"SANDBOX_PROVIDER", "process"}}).empty());
  EXPECT_TRUE(check_environment({{"SANDBOX_PROVIDER", "process"}}).empty()) << "development";
}

TEST(Environments, LocalUrlsAreRecognized) {
  for (std::string u : {"http://localhost", "https://LOCALHOST:8443/x", "http://api.localhost", "http://127.0.0.1:1",
                        "http://127.1.2.3", "http://[::1]:80/", "http://0.0.0.0:4000", "redis://:pw@127.0.0.1:6379/0",
                        "http://host.docker.internal:3000", "host=localhost dbname=growqr", "localhost:5432"})
    EXPECT_TRUE(is_local_url(u)) << u;
  for (std::string u : {"https://app.growqr.example", "http://10.0.0.5:8080", "postgresql://u@db.internal/x",
                        "https://localhost.example.com"})
    EXPECT_FALSE(is_local_url(u)) << u;
}

TEST(Environments, DemoSeedingIsImpossibleInProduction) {
  AppConfig cfg{{"APP_ENV", "production"}, {"DEMO_DATA_ENABLED", "true"}};
  auto st = demo_seed_allowed(lookup_in(cfg), /*caller_is_admin=*/true);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(http_status_for(st.error()), 403);
}

TEST(Environments, DemoSeedingInStagingNeedsTheFlagAndAnAdmin) {
  AppConfig cfg{{"APP_ENV", "staging"}};
  EXPECT_FALSE(demo_seed_allowed(lookup_in(cfg), true).ok());
  cfg["DEMO_DATA_ENABLED"] = "true";
  EXPECT_FALSE(demo_seed_allowed(lookup_in(cfg), false).ok());
  EXPECT_TRUE(demo_seed_allowed(lookup_in(cfg), true).ok());
  EXPECT_TRUE(demo_seed_allowed(lookup_in(AppConfig{{"APP_ENV", "development"}}), false).ok());
}

TEST(Environments, AnEmptyAdminListAdmitsNobodyOutsideDevelopment) {
  AuthSettings s;
  s.env = Environment::production;
  EXPECT_FALSE(is_admin(s, "user_a"));
  s.admins = {"user_a"};
  EXPECT_TRUE(is_admin(s, "user_a"));
  EXPECT_FALSE(is_admin(s, "user_b"));
  AuthSettings dev;
  EXPECT_TRUE(is_admin(dev, "user_a")) << "development: any authenticated caller";
}

TEST(Environments, AdminIdsAreParsedFromACommaList) {
  auto s = auth_settings(lookup_in(AppConfig{{"ADMIN_USER_IDS", "user_a, user_b,,"}}));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->admins, (std::vector<std::string>{"user_a", "user_b"}));
}

}  // namespace
}  // namespace anvil::growqr
