#include "base/value/error.hpp"

namespace anvil {

Error make_error(std::string group, std::string code, std::string message, std::optional<Value> metadata) {
  return Error{std::move(group), std::move(code), std::move(message), std::move(metadata)};
}

Error internal_error() { return make_error("rivetkit", "internal_error", "An internal error occurred"); }

int http_status_for(const Error& e) {
  const auto& g = e.group;
  const auto& c = e.code;
  if (g == "auth") {
    // Authentication: refused credentials are 401, a known caller without
    // the right is 403, an authenticator that cannot work is 503.
    if (c == "forbidden") return 403;
    if (c == "not_configured" || c == "jwks_unavailable") return 503;
    return 401;
  }
  if (g == "actor") {
    if (c == "action_not_found" || c == "not_found") return 404;
    if (c == "action_timed_out") return 408;
    if (c == "invalid_request" || c == "duplicate_key" || c == "not_registered") return 400;
    // Anvil's own request validation (actor_key.cpp, manager_api.cpp).
    if (c == "key_too_large" || c == "input_too_large") return 400;
    if (c == "method_not_allowed") return 405;
    if (c == "destroy_not_allowed") return 403;
  }
  if (g == "message" && (c == "incoming_too_long" || c == "outgoing_too_long")) return 400;
  if (g == "queue" || g == "validation") return 400;
  if (g == "namespace" && c == "not_found") return 400;
  if (g == "guard" && c.rfind("query_", 0) == 0) return 400;
  if (g == "api" && c == "not_found") return 404;
  // Anvil: the outside world an actor waited on (Runtime 2).
  if (g == "actor" && c == "aborted") return 503;
  if (g == "outbound") return c == "timeout" ? 504 : 502;
  // Anvil's storage: a full disk is 507 Insufficient Storage (retry once
  // space is freed); a failed disk is 503 (the node refuses writes until
  // restarted, see docs/operator-guide.md "Failure modes").
  if (g == "storage") return c == "disk_full" ? 507 : 503;
  if ((g == "db" && (c == "unavailable" || c == "not_configured" || c == "shutting_down")) ||
      (g == "redis" && (c == "unavailable" || c == "not_configured" || c == "timeout")))
    return 503;
  return 500;
}

}  // namespace anvil
