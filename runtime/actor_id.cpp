#include "runtime/actor_id.hpp"

#include <random>

namespace anvil {

std::string new_actor_id() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (uint64_t(std::random_device{}()) << 32)};
  unsigned __int128 v = (unsigned __int128)rng() << 64 | rng();
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out(kActorIdLength, '0');
  for (size_t i = kActorIdLength; i-- > 0;) {
    out[i] = kDigits[static_cast<int>(v % 36)];
    v /= 36;
  }
  return out;
}

std::string new_inspector_token() {
  // Not the id generator's mt19937: a token must not be predictable from
  // tokens seen before.
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (int i = 0; i < 8; ++i) {
    uint32_t w = rd();
    for (int j = 0; j < 8; ++j, w >>= 4) out.push_back(kHex[w & 15]);
  }
  return out;
}

bool is_valid_actor_id(std::string_view id) {
  if (id.size() != kActorIdLength) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  return true;
}

}  // namespace anvil
