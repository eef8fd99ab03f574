// One error vocabulary for the whole engine, matching the wire's error shape
// (client-protocol.md §4.4): group/code/message plus optional metadata.
#pragma once

#include <optional>
#include <type_traits>
#include <string>
#include <utility>
#include <variant>

#include "base/value/value.hpp"

namespace anvil {

struct Error {
  std::string group;
  std::string code;
  std::string message;
  std::optional<Value> metadata;

  std::string qualified() const { return group + "." + code; }
};

Error make_error(std::string group, std::string code, std::string message,
                 std::optional<Value> metadata = std::nullopt);

// HTTP status the real runtime/engine uses for an error (rivetkit-core
// framework_error_status, plus gateway/manager codes).
int http_status_for(const Error& e);

// The sanitized shape every non-user exception is reported as.
Error internal_error();

// A minimal expected<T, Error> (C++20 has no std::expected). [[nodiscard]]:
// an ignored Result (and so an ignored Status) is a warning; ignore one
// only with `(void)` and a comment saying why.
template <typename T>
class [[nodiscard]] Result {
 public:
  // A default-constructed Result is an internal error (asio needs a default
  // for awaitable results; it is never observed on the success path).
  Result() : v_(std::in_place_index<1>, Error{"rivetkit", "internal_error", "An internal error occurred", {}}) {}
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}
  // Anything T can be built from (Result<Value> r = true; = "ok"; = Array{}).
  template <typename U>
    requires(std::is_constructible_v<T, U &&> && !std::is_same_v<std::decay_t<U>, T> &&
             !std::is_same_v<std::decay_t<U>, Error> && !std::is_same_v<std::decay_t<U>, Result>)
  Result(U&& u) : v_(std::in_place_index<0>, T(std::forward<U>(u))) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }
  Error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Result<void> equivalent (nodiscard through Result).
struct Ok {};
using Status = Result<Ok>;

}  // namespace anvil
