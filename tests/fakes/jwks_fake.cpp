#include "tests/fakes/jwks_fake.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <stdexcept>

#include "base/value/json.hpp"

namespace anvil::fakes {

struct JwksFake::Key {
  std::string kid;
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

namespace {

std::string b64url(const std::string& s) {
  return json::base64_encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()), true);
}

std::string bn_b64url(EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) throw std::runtime_error("jwks fake: no RSA parameter");
  std::string bytes(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
  BN_free(bn);
  return b64url(bytes);
}

std::shared_ptr<JwksFake::Key> generate(const std::string& kid) {
  auto k = std::make_shared<JwksFake::Key>();
  k->kid = kid;
  k->pkey = EVP_RSA_gen(2048);
  if (!k->pkey) throw std::runtime_error("jwks fake: RSA key generation failed");
  return k;
}

std::string rs256(EVP_PKEY* pkey, const std::string& data) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  if (EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
      EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1) {
    sig.resize(len);
    if (EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1)
      sig.resize(len);
    else
      sig.clear();
  }
  EVP_MD_CTX_free(md);
  if (sig.empty()) throw std::runtime_error("jwks fake: signing failed");
  return sig;
}

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

JwksFake::JwksFake() {
  add_key("key-1", true);
  server_.route("GET", "/.well-known/jwks.json", [this](const RecordedRequest& r) { return serve_jwks(r, false); });
  server_.route("GET", "/v1/jwks", [this](const RecordedRequest& r) { return serve_jwks(r, true); });
}

JwksFake::~JwksFake() { server_.stop(); }

std::string JwksFake::jwks_url() const { return server_.url("/.well-known/jwks.json"); }

std::string JwksFake::issuer() const {
  std::string u = server_.url("/");
  return u.substr(0, u.size() - 1);
}

std::string JwksFake::jwks_document() const {
  Array keys;
  std::lock_guard lk(mu_);
  for (const auto& k : published_)
    keys.push_back(obj({{"kty", "RSA"},
                        {"use", "sig"},
                        {"alg", "RS256"},
                        {"kid", k->kid},
                        {"n", bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_N)},
                        {"e", bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_E)}}));
  return json::dump(obj({{"keys", keys}}));
}

FakeResponse JwksFake::serve_jwks(const RecordedRequest& req, bool backend_api) {
  if (backend_api && req.header("authorization") != "Bearer " + secret_)
    return FakeResponse::json(401, R"({"errors":[{"code":"authentication_invalid"}]})");
  {
    std::lock_guard lk(mu_);
    ++fetches_;
  }
  return FakeResponse::json(200, jwks_document());
}

void JwksFake::add_key(const std::string& kid, bool sign) {
  auto k = generate(kid);
  std::lock_guard lk(mu_);
  published_.push_back(k);
  if (sign) signing_ = k;
}

void JwksFake::rotate(const std::string& kid) {
  auto k = generate(kid);
  std::lock_guard lk(mu_);
  published_.clear();
  published_.push_back(k);
  signing_ = k;
}

std::string JwksFake::signing_kid() const {
  std::lock_guard lk(mu_);
  return signing_->kid;
}

void JwksFake::add_user(const std::string& id, Value user) {
  std::string body = json::dump(user);
  std::string secret = secret_;
  server_.route("GET", "/v1/users/" + id, [body, secret](const RecordedRequest& r) {
    if (r.header("authorization") != "Bearer " + secret)
      return FakeResponse::json(401, R"({"errors":[{"code":"authentication_invalid"}]})");
    return FakeResponse::json(200, body);
  });
}

size_t JwksFake::jwks_fetches() const {
  std::lock_guard lk(mu_);
  return fetches_;
}

std::shared_ptr<JwksFake::Key> JwksFake::key_for(const MintOptions& opts) {
  if (opts.unpublished_key) {
    auto k = generate(opts.kid.value_or(signing_kid()));
    return k;
  }
  std::lock_guard lk(mu_);
  if (!opts.kid) return signing_;
  for (const auto& k : published_)
    if (k->kid == *opts.kid) return k;
  // A kid nobody published: sign with the current key, name the unknown kid.
  auto named = std::make_shared<Key>();
  named->kid = *opts.kid;
  named->pkey = signing_->pkey;
  EVP_PKEY_up_ref(named->pkey);
  return named;
}

std::string JwksFake::mint(const std::string& sub, MintOptions opts) {
  auto key = key_for(opts);
  const int64_t now = now_s();
  Value claims = obj({{"sub", sub},
                      {"iss", opts.issuer.value_or(issuer())},
                      {"iat", now},
                      {"nbf", now + opts.not_before.count()},
                      {"exp", now + opts.ttl.count()},
                      {"sid", "sess_" + sub}});
  if (opts.audience) claims["aud"] = *opts.audience;
  if (opts.azp) claims["azp"] = *opts.azp;
  if (opts.extra_claims.is_object())
    for (const auto& [k, v] : opts.extra_claims.as_object()) claims[k] = v;
  Value header = obj({{"alg", opts.alg}, {"typ", "JWT"}, {"kid", key->kid}});
  std::string signed_text = b64url(json::dump(header)) + "." + b64url(json::dump(claims));
  std::string sig;
  if (opts.alg == "RS256") {
    sig = rs256(key->pkey, signed_text);
  } else if (opts.alg == "HS256") {
    // The classic confusion attack: the public modulus used as an HMAC secret.
    std::string secret = bn_b64url(key->pkey, OSSL_PKEY_PARAM_RSA_N);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac, &mac_len);
    sig.assign(reinterpret_cast<const char*>(mac), mac_len);
  }
  return signed_text + "." + (sig.empty() ? std::string() : b64url(sig));
}

}  // namespace anvil::fakes
