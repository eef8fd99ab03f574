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

bool is_valid_actor_id(std::string_view id) {
  if (id.size() != kActorIdLength) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  return true;
}

}  // namespace anvil
