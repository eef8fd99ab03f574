#include "actors/growqr/auth/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "base/value/json.hpp"

namespace anvil::growqr::auth {
namespace {

Error invalid_token(std::string why) { return make_error("auth", "invalid_token", "Invalid session token: " + why + "."); }

Result<Value> decode_json_part(std::string_view part, const char* what) {
  auto bytes = json::base64_decode(part);
  if (!bytes.ok()) return invalid_token(std::string(what) + " is not base64url");
  auto v = json::parse(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()), false);
  if (!v.ok() || !v->is_object()) return invalid_token(std::string(what) + " is not a JSON object");
  return v;
}

struct Parts {
  std::string_view header, payload, signature, signed_text;
};

Result<Parts> split(std::string_view token) {
  auto a = token.find('.');
  auto b = a == std::string_view::npos ? a : token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos)
    return invalid_token("not a compact JWS (header.payload.signature)");
  Parts p{token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1), token.substr(0, b)};
  // An empty signature is left to the algorithm check (`none`) and verify().
  if (p.header.empty() || p.payload.empty()) return invalid_token("an empty part");
  return p;
}

std::optional<int64_t> number_claim(const Value& claims, std::string_view name) {
  const Value* v = claims.find(name);
  if (!v || !v->is_number()) return std::nullopt;
  return v->is_int() ? v->as_int() : static_cast<int64_t>(v->as_double());
}

std::shared_ptr<void> rsa_public_key(const Bytes& n, const Bytes& e) {
  BIGNUM* bn_n = BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY_CTX* ctx = nullptr;
  EVP_PKEY* pkey = nullptr;
  if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1 && (params = OSSL_PARAM_BLD_to_param(bld)) &&
      (ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr)) && EVP_PKEY_fromdata_init(ctx) == 1) {
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  if (!pkey) return nullptr;
  if (EVP_PKEY_get_bits(pkey) < 2048) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  return std::shared_ptr<void>(pkey, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

bool rs256_valid(const PublicKey& key, std::string_view signed_text, const Bytes& signature) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  if (!md) return false;
  bool ok = EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, static_cast<EVP_PKEY*>(key.pkey.get())) == 1 &&
            EVP_DigestVerify(md, signature.data(), signature.size(),
                             reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

std::string str_field(const Value& v, std::string_view name) {
  const Value* f = v.find(name);
  return f && f->is_string() ? f->as_string() : std::string();
}

}  // namespace

const PublicKey* KeySet::find(std::string_view kid) const {
  for (const auto& k : keys)
    if (k.kid == kid) return &k;
  return nullptr;
}

Result<KeySet> parse_jwks(std::string_view json_text) {
  auto doc = json::parse(json_text, false);
  const Value* list = doc.ok() && doc->is_object() ? doc->find("keys") : nullptr;
  if (!list || !list->is_array())
    return make_error("auth", "jwks_invalid", "The JWKS document has no `keys` list.");
  KeySet set;
  for (const Value& k : list->as_array()) {
    if (!k.is_object() || str_field(k, "kty") != "RSA") continue;
    if (auto use = str_field(k, "use"); !use.empty() && use != "sig") continue;
    if (auto alg = str_field(k, "alg"); !alg.empty() && alg != "RS256") continue;
    auto n = json::base64_decode(str_field(k, "n"));
    auto e = json::base64_decode(str_field(k, "e"));
    if (!n.ok() || !e.ok() || n->empty() || e->empty()) continue;
    auto pkey = rsa_public_key(*n, *e);
    if (!pkey) continue;
    set.keys.push_back(PublicKey{str_field(k, "kid"), std::move(pkey)});
  }
  return set;
}

Result<TokenHeader> read_header(std::string_view token) {
  auto parts = split(token);
  if (!parts.ok()) return parts.error();
  auto header = decode_json_part(parts->header, "the header");
  if (!header.ok()) return header.error();
  TokenHeader h{str_field(*header, "alg"), str_field(*header, "kid")};
  // Only RS256: `none` and the HMAC family (a public key misused as an HMAC
  // secret) are refused before any key is looked up.
  if (h.alg != "RS256")
    return make_error("auth", "unsupported_algorithm",
                      "Session tokens must be signed with RS256 (got `" + (h.alg.empty() ? "none" : h.alg) + "`).",
                      obj({{"alg", h.alg}}));
  return h;
}

Result<Value> verify(std::string_view token, const KeySet& keys, const VerifyOptions& opts) {
  auto header = read_header(token);
  if (!header.ok()) return header.error();
  auto parts = split(token);
  const PublicKey* key = keys.find(header->kid);
  // A token without kid is accepted only against a one-key set (no choice to make).
  if (!key && header->kid.empty() && keys.keys.size() == 1) key = &keys.keys[0];
  if (!key)
    return make_error("auth", "unknown_key", "The session token is signed with an unknown key.",
                      obj({{"kid", header->kid}}));
  auto sig = json::base64_decode(parts->signature);
  if (!sig.ok() || sig->empty() || !rs256_valid(*key, parts->signed_text, *sig))
    return make_error("auth", "invalid_signature", "The session token's signature is not valid.");
  auto claims = decode_json_part(parts->payload, "the payload");
  if (!claims.ok()) return claims.error();

  auto exp = number_claim(*claims, "exp");
  if (!exp) return invalid_token("no `exp` claim");
  if (opts.now_s > *exp + opts.clock_skew_s)
    return make_error("auth", "token_expired", "The session token has expired.", obj({{"exp", *exp}}));
  if (auto nbf = number_claim(*claims, "nbf"); nbf && opts.now_s + opts.clock_skew_s < *nbf)
    return make_error("auth", "token_not_yet_valid", "The session token is not valid yet.", obj({{"nbf", *nbf}}));
  if (opts.issuer && str_field(*claims, "iss") != *opts.issuer) return invalid_token("wrong issuer");
  if (opts.audience) {
    const Value* aud = claims->find("aud");
    bool found = aud && aud->is_string() && aud->as_string() == *opts.audience;
    if (aud && aud->is_array())
      for (const Value& a : aud->as_array()) found = found || (a.is_string() && a.as_string() == *opts.audience);
    if (!found) return invalid_token("wrong audience");
  }
  if (!opts.authorized_parties.empty()) {
    // Clerk's `azp` is the origin the token was issued to; absent = not a browser token.
    std::string azp = str_field(*claims, "azp");
    bool allowed = azp.empty();
    for (const auto& p : opts.authorized_parties) allowed = allowed || p == azp;
    if (!allowed) return invalid_token("issued to another party");
  }
  if (str_field(*claims, "sub").empty()) return invalid_token("no subject");
  return claims;
}

}  // namespace anvil::growqr::auth
