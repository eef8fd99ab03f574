// JwksFake: Clerk for tests. Serves a JSON Web Key Set at
// /.well-known/jwks.json (and Clerk's Backend API shapes: GET /v1/jwks and
// GET /v1/users/{id}, both requiring `authorization: Bearer <secret_key()>`)
// on 127.0.0.1, holds RSA-2048 keys it generates, and mints RS256 session
// tokens with chosen claims and kid — or broken ones (expired, signed with
// an unpublished key, alg none / HS256) — and rotates keys.
//
//   anvil::fakes::JwksFake clerk;
//   config["CLERK_JWKS_URL"] = clerk.jwks_url();
//   config["CLERK_ISSUER"] = clerk.issuer();
//   std::string t = clerk.mint("user_a");                  // valid for 60 s
//   std::string old = clerk.mint("user_a", JwksFake::MintOptions().expires_in(-120s));  // expired
//   clerk.rotate("key-2");                                  // new signing key, old one unpublished
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/value/value.hpp"
#include "tests/fakes/fake_http.hpp"

namespace anvil::fakes {

class JwksFake {
 public:
  struct MintOptions {
    std::chrono::seconds ttl{60};           // exp = now + ttl (negative: already expired)
    std::chrono::seconds not_before{0};     // nbf = now + not_before
    std::optional<std::string> kid;         // default: the current signing key's
    std::optional<std::string> issuer;      // default: issuer()
    std::optional<std::string> audience;    // `aud` when set
    std::optional<std::string> azp;         // `azp` when set
    bool unpublished_key = false;           // sign with a fresh key that is not in the set (bad signature)
    std::string alg = "RS256";              // "none" (no signature) or "HS256" (HMAC) to forge
    Value extra_claims = Object{};          // merged into the payload

    MintOptions& expires_in(std::chrono::seconds s) { ttl = s; return *this; }
    MintOptions& valid_from_in(std::chrono::seconds s) { not_before = s; return *this; }
    MintOptions& with_kid(std::string k) { kid = std::move(k); return *this; }
    MintOptions& with_issuer(std::string i) { issuer = std::move(i); return *this; }
    MintOptions& with_audience(std::string a) { audience = std::move(a); return *this; }
    MintOptions& with_azp(std::string a) { azp = std::move(a); return *this; }
    MintOptions& signed_by_unpublished_key() { unpublished_key = true; return *this; }
    MintOptions& with_alg(std::string a) { alg = std::move(a); return *this; }
  };

  JwksFake();  // starts the server with one published signing key, "key-1"
  ~JwksFake();

  std::string jwks_url() const;   // http://127.0.0.1:<port>/.well-known/jwks.json
  std::string issuer() const;     // http://127.0.0.1:<port> (also the base of the Backend API paths)
  const std::string& secret_key() const { return secret_; }

  // A session token for `sub`.
  std::string mint(const std::string& sub, MintOptions opts);
  std::string mint(const std::string& sub) { return mint(sub, MintOptions{}); }

  // Generates and publishes a new key; with `sign`, it becomes the signing key.
  void add_key(const std::string& kid, bool sign = false);
  // A new signing key `kid`; the previous keys are unpublished.
  void rotate(const std::string& kid);
  std::string signing_kid() const;

  // GET /v1/users/{id} answers this Clerk user object.
  void add_user(const std::string& id, Value user);

  // JWKS documents served so far (both paths).
  size_t jwks_fetches() const;
  FakeHttpServer& server() { return server_; }

  struct Key;

 private:
  std::string jwks_document() const;
  FakeResponse serve_jwks(const RecordedRequest& req, bool backend_api);
  std::shared_ptr<Key> key_for(const MintOptions& opts);

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Key>> published_;  // GUARDED_BY(mu_)
  std::shared_ptr<Key> signing_;                 // GUARDED_BY(mu_)
  size_t fetches_ = 0;                           // GUARDED_BY(mu_)
  std::string secret_ = "sk_test_jwks_fake";
  FakeHttpServer server_;
};

}  // namespace anvil::fakes
