#include "tests/fakes/services_fake.hpp"

#include <gtest/gtest.h>

#include "tests/fakes/fake_client.hpp"

namespace anvil::fakes {
namespace {

using client::BlockingClient;

TEST(ServicesFake, TheSameIdempotencyKeyGetsTheFirstAnswerAndCountsOneEffect) {
  ServicesFake svc;
  BlockingClient c;
  const std::string body = json::dump(obj({{"userId", "u1"}, {"config", obj({{"role", "pm"}})}}));
  auto a = c.send("POST", svc.url("interview") + "/configure", body, {{"Idempotency-Key", "k1"}});
  auto b = c.send("POST", svc.url("interview") + "/configure", body, {{"Idempotency-Key", "k1"}});
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(svc.calls("interview", "configure"), 2);
  EXPECT_EQ(svc.effects("interview", "configure"), 1);
  EXPECT_EQ(c.send("POST", svc.url("interview") + "/review", body).status, 400);
  EXPECT_EQ(c.send("POST", svc.url("resume") + "/sessions", body, {{"Idempotency-Key", "k2"}}).status, 201);
}

TEST(ServicesFake, DownAnswers503AndRefusedRefusesUntilUp) {
  ServicesFake svc;
  BlockingClient c;
  svc.down();
  EXPECT_EQ(c.send("GET", svc.url("roleplay") + "/health").status, 503);
  svc.refuse();
  auto refused = c.send("GET", svc.url("roleplay") + "/health");
  EXPECT_EQ(refused.status, 0);
  EXPECT_NE(refused.error.find("connect_failed"), std::string::npos) << refused.error;
  svc.up();
  EXPECT_EQ(c.send("GET", svc.url("roleplay") + "/health").status, 200);
}

}  // namespace
}  // namespace anvil::fakes
