// Gateway addressing (client-protocol.md §3): how a `/gateway/…` request
// path and its query name an actor, parsed without touching the runtime.
// Pure (bytes in, values or Error out) so that untrusted paths and queries
// can be unit-tested and fuzzed (tests/fuzz/fuzz_http_addressing.cpp);
// ActorRoutes::resolve_target does the lookups.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/value/error.hpp"
#include "base/value/value.hpp"
#include "runtime/actor_key.hpp"

namespace anvil::gateway {

// Parsed `rvt-*` query addressing.
struct QueryAddress {
  std::string namespace_name = "default";
  std::string method;  // "get" | "getOrCreate"
  ActorKey key;
  std::optional<Value> input;
  std::string runner = "default";
  std::optional<std::string> region, crash_policy, token;
  std::string actor_query;  // remaining params, raw
};
// nullopt when the query carries no rvt-* params (direct addressing).
std::optional<Result<QueryAddress>> parse_query_address(std::string_view raw_query);

// `/gateway/<segment>[/<actor path>]` (base path already stripped).
struct GatewayPath {
  std::string_view segment;  // "<id>[@<token>]" or "<name>", still percent-encoded
  std::string actor_path;    // e.g. "/action/increment" (raw); "/" when absent
};
// api.not_found when `path` is not under /gateway or names no actor.
Result<GatewayPath> split_gateway_path(std::string_view path);

// A directly addressed actor: "<id>[@<token>]", both percent-encoded.
struct DirectAddress {
  std::string actor_id;
  std::optional<std::string> token;
};
// actor.invalid_request on a malformed percent escape.
Result<DirectAddress> parse_direct_segment(std::string_view segment);

}  // namespace anvil::gateway
