// Clerk session tokens: RS256 verification against the JWKS fake, the
// cache's refresh on unknown kids and its rate limit.
#include <gtest/gtest.h>

#include <thread>

#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/auth/jwks.hpp"
#include "actors/growqr/auth/jwt.hpp"
#include "tests/fakes/jwks_fake.hpp"

namespace anvil::growqr::auth {
namespace {

using namespace std::chrono_literals;
using Mint = fakes::JwksFake::MintOptions;
using fakes::JwksFake;

class Jwt : public ::testing::Test {
 protected:
  Jwt() : work_(asio::make_work_guard(io_)), http_(io_), thread_([this] { io_.run(); }) {}
  ~Jwt() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  template <typename T>
  T run(asio::awaitable<T> aw) {
    return asio::co_spawn(io_, std::move(aw), asio::use_future).get();
  }

  JwksSource source(std::chrono::milliseconds min_refresh = 0ms) {
    JwksSource s;
    s.url = clerk_.jwks_url();
    s.min_refresh = min_refresh;
    return s;
  }
  VerifyOptions options() {
    VerifyOptions o;
    o.now_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    o.issuer = clerk_.issuer();
    return o;
  }
  HttpFetch fetch() {
    return [this](net::HttpRequest r) { return http_.request(std::move(r)); };
  }
  // A fresh cache per test (the process-wide one is keyed by URL; each
  // test's fake has its own port).
  Result<Value> verify(const std::string& token, JwksSource src, VerifyOptions opts) {
    return run(cache_->verify(token, std::move(src), std::move(opts), fetch()));
  }
  Result<Value> verify(const std::string& token) { return verify(token, source(), options()); }
  static std::string code(const Result<Value>& r) { return r.ok() ? "ok" : r.error().qualified(); }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  net::HttpClient http_;
  std::thread thread_;
  JwksFake clerk_;
  std::shared_ptr<JwksCache> cache_ = std::make_shared<JwksCache>();
};

TEST_F(Jwt, AValidTokenVerifiesToItsClaims) {
  auto claims = verify(clerk_.mint("user_a"));
  ASSERT_TRUE(claims.ok()) << claims.error().message;
  EXPECT_EQ(claims->find("sub")->as_string(), "user_a");
}

TEST_F(Jwt, AnExpiredTokenIsRefusedAsExpired) {
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().expires_in(-60s)))), "auth.token_expired");
}

TEST_F(Jwt, ATokenExpiredWithinTheClockSkewIsStillAccepted) {
  auto opts = options();
  opts.clock_skew_s = 5;
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().expires_in(-2s)), source(), opts)), "ok");
  opts.clock_skew_s = 0;
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().expires_in(-2s)), source(), opts)), "auth.token_expired");
}

TEST_F(Jwt, ATokenNotValidYetIsRefused) {
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().valid_from_in(120s)))), "auth.token_not_yet_valid");
}

TEST_F(Jwt, ATokenSignedByAnUnpublishedKeyUnderAKnownKidHasABadSignature) {
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().signed_by_unpublished_key()))), "auth.invalid_signature");
}

TEST_F(Jwt, ATamperedPayloadHasABadSignature) {
  std::string good = clerk_.mint("user_a");
  std::string evil = clerk_.mint("user_b");
  // user_b's claims under user_a's signature.
  auto dot1 = good.find('.'), dot2 = good.rfind('.');
  auto e1 = evil.find('.'), e2 = evil.rfind('.');
  std::string forged = good.substr(0, dot1 + 1) + evil.substr(e1 + 1, e2 - e1 - 1) + good.substr(dot2);
  EXPECT_EQ(code(verify(forged)), "auth.invalid_signature");
}

TEST_F(Jwt, AnUnknownKidIsRefusedAfterOneRefresh) {
  EXPECT_EQ(code(verify(clerk_.mint("user_a"))), "ok");
  EXPECT_EQ(clerk_.jwks_fetches(), 1u);
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().with_kid("nobody-published-this")))), "auth.unknown_key");
  EXPECT_EQ(clerk_.jwks_fetches(), 2u) << "an unknown kid refreshes the set once";
}

TEST_F(Jwt, AlgNoneAndHs256AreRefusedWithoutFetchingKeys) {
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().with_alg("none")))), "auth.unsupported_algorithm");
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().with_alg("HS256")))), "auth.unsupported_algorithm");
  EXPECT_EQ(clerk_.jwks_fetches(), 0u);
}

TEST_F(Jwt, MalformedTokensAreInvalid) {
  for (std::string t : {"", "abc", "a.b", "a.b.c.d", "!!!.???.xyz"}) EXPECT_EQ(code(verify(t)), "auth.invalid_token") << t;
}

TEST_F(Jwt, AWrongIssuerOrAudienceIsInvalid) {
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().with_issuer("https://evil.example")))), "auth.invalid_token");
  auto opts = options();
  opts.audience = "growqr";
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().with_audience("growqr")), source(), opts)), "ok");
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().with_audience("other")), source(), opts)), "auth.invalid_token");
  EXPECT_EQ(code(verify(clerk_.mint("user_a"), source(), opts)), "auth.invalid_token") << "no aud at all";
}

TEST_F(Jwt, AnAuthorizedPartyOutsideTheListIsInvalid) {
  auto opts = options();
  opts.authorized_parties = {"https://app.growqr.example"};
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().with_azp("https://app.growqr.example")), source(), opts)), "ok");
  EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().with_azp("https://evil.example")), source(), opts)), "auth.invalid_token");
}

TEST_F(Jwt, KeyRotationIsPickedUpOnTheFirstTokenWithTheNewKid) {
  EXPECT_EQ(code(verify(clerk_.mint("user_a"))), "ok");
  clerk_.rotate("key-2");
  EXPECT_EQ(code(verify(clerk_.mint("user_a"))), "ok") << "the unknown kid refreshed the cached set";
  EXPECT_EQ(clerk_.jwks_fetches(), 2u);
}

TEST_F(Jwt, AFloodOfUnknownKidsFetchesAtMostOncePerRefreshInterval) {
  auto src = source(60'000ms);
  EXPECT_EQ(code(verify(clerk_.mint("user_a"), src, options())), "ok");
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(code(verify(clerk_.mint("user_a", Mint().with_kid("made-up-" + std::to_string(i))), src, options())),
              "auth.unknown_key");
  EXPECT_EQ(clerk_.jwks_fetches(), 1u) << "the first fetch set the interval; nothing more within it";
}

TEST_F(Jwt, ConcurrentUnknownKidsShareOneFetch) {
  EXPECT_EQ(code(verify(clerk_.mint("user_a"))), "ok");
  clerk_.rotate("key-2");
  std::string token = clerk_.mint("user_a");
  // All 20 start from one handler: each runs only after it, so all are in
  // flight before the fetch can complete.
  std::vector<std::future<Result<Value>>> all;
  std::promise<void> spawned;
  asio::post(io_, [&] {
    for (int i = 0; i < 20; ++i)
      all.push_back(asio::co_spawn(io_, cache_->verify(token, source(), options(), fetch()), asio::use_future));
    spawned.set_value();
  });
  spawned.get_future().wait();
  for (auto& f : all) EXPECT_EQ(code(f.get()), "ok");
  EXPECT_EQ(clerk_.jwks_fetches(), 2u);
}

TEST_F(Jwt, AnUnreachableJwksIsUnavailableNotUnauthorized) {
  JwksSource src;
  src.url = "http://127.0.0.1:9/.well-known/jwks.json";
  auto r = verify(clerk_.mint("user_a"), src, options());
  EXPECT_EQ(code(r), "auth.jwks_unavailable");
  EXPECT_EQ(http_status_for(r.error()), 503);
}

TEST_F(Jwt, TheBackendApiJwksIsFetchedWithTheSecretKey) {
  AppConfig cfg{{"APP_ENV", "test"},
                {"CLERK_SECRET_KEY", clerk_.secret_key()},
                {"CLERK_API_URL", clerk_.issuer()}};
  auto s = auth_settings(lookup_in(cfg));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->jwks);
  EXPECT_EQ(s->jwks->url, clerk_.issuer() + "/v1/jwks");
  EXPECT_EQ(code(verify(clerk_.mint("user_a"), *s->jwks, options())), "ok");
  JwksSource wrong = *s->jwks;
  wrong.bearer = "sk_wrong";
  EXPECT_EQ(code(run(std::make_shared<JwksCache>()->verify(clerk_.mint("user_a"), wrong, options(), fetch()))),
            "auth.jwks_unavailable");
}

TEST_F(Jwt, TheJwksUrlIsDerivedFromTheIssuerWhenNotGiven) {
  AppConfig cfg{{"CLERK_ISSUER", "https://clerk.growqr.example/"}};
  auto s = auth_settings(lookup_in(cfg));
  ASSERT_TRUE(s.ok() && s->jwks);
  EXPECT_EQ(s->jwks->url, "https://clerk.growqr.example/.well-known/jwks.json");
  EXPECT_TRUE(s->jwks->bearer.empty());
}

TEST(Jwks, KeysThatCannotVerifyRs256AreSkipped) {
  auto set = parse_jwks(R"({"keys":[{"kty":"EC","kid":"ec"},{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},
                                    {"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"}]})");
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->keys.empty());
  EXPECT_FALSE(parse_jwks("[]").ok());
}

}  // namespace
}  // namespace anvil::growqr::auth
