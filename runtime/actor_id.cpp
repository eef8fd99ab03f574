#include "runtime/actor_id.hpp"

#include <cerrno>
#include <random>

#include <sys/random.h>

namespace anvil {

namespace {
size_t g_id_length = kActorIdLength;
}

size_t actor_id_length() { return g_id_length; }
void set_actor_id_length(size_t n) { g_id_length = n; }

std::string new_actor_id() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (uint64_t(std::random_device{}()) << 32)};
  unsigned __int128 v = (unsigned __int128)rng() << 64 | rng();
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out(actor_id_length(), '0');
  for (size_t i = out.size(); i-- > 0 && v != 0;) {
    out[i] = kDigits[static_cast<int>(v % 36)];
    v /= 36;
  }
  return out;
}

std::string new_inspector_token() {
  // Not the id generator's mt19937: a token must not be predictable from
  // tokens seen before. One getrandom(2) call: a std::random_device per
  // token cost more than the rest of a cold create (its setup runs cpuid,
  // a hypervisor exit on a VM, and each draw is a syscall of its own).
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      // No kernel source (not on Linux >= 3.17): the C++ library's.
      std::random_device rd;
      for (; got < sizeof bytes; ++got) bytes[got] = static_cast<unsigned char>(rd());
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

bool is_valid_actor_id(std::string_view id) {
  if (id.size() != actor_id_length()) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  return true;
}

}  // namespace anvil
