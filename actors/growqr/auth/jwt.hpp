// Clerk session tokens: compact JWS, RS256 only, verified with OpenSSL
// against a JSON Web Key Set. Pure functions (no I/O, no clock): the JWKS
// cache (jwks.hpp) fetches keys, the caller passes the time.
//
// Errors (group `auth`, HTTP 401 unless noted): invalid_token (malformed,
// wrong issuer/audience/authorized party, no subject), unsupported_algorithm
// (anything but RS256: `none`, HS256, ...), unknown_key (no key with the
// token's kid: the caller may refresh the set and try again),
// invalid_signature, token_expired, token_not_yet_valid.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::growqr::auth {

// One RSA verification key of a set (an OpenSSL EVP_PKEY, shared).
struct PublicKey {
  std::string kid;
  std::shared_ptr<void> pkey;  // EVP_PKEY*, freed with EVP_PKEY_free
};

struct KeySet {
  std::vector<PublicKey> keys;
  const PublicKey* find(std::string_view kid) const;
};

// Parses a JWKS document ({"keys":[{kty:"RSA", kid, n, e, ...}]}). Keys that
// are not RSA signing keys usable with RS256 (kty != RSA, use != sig, alg
// set and != RS256, modulus under 2048 bits) are skipped; a document that is
// not a key set is auth.jwks_invalid.
Result<KeySet> parse_jwks(std::string_view json_text);

struct VerifyOptions {
  int64_t now_s = 0;                        // Unix seconds
  int64_t clock_skew_s = 5;                 // allowed on exp and nbf
  std::optional<std::string> issuer;        // `iss` must equal it when set
  std::optional<std::string> audience;      // `aud` (string or list) must contain it when set
  std::vector<std::string> authorized_parties;  // `azp` must be one of them when non-empty
};

// The parts of a token before its signature is checked.
struct TokenHeader {
  std::string alg;
  std::string kid;
};
// Splits and decodes the header; invalid_token / unsupported_algorithm.
Result<TokenHeader> read_header(std::string_view token);

// Verifies signature and claims; the claims object on success. `exp` is
// required; `sub` must be a non-empty string.
Result<Value> verify(std::string_view token, const KeySet& keys, const VerifyOptions& opts);

}  // namespace anvil::growqr::auth
