// Small helpers shared by the GrowQR mission and workflow-run parts: request
// bodies, error -> HTTP status, stable ids derived from
// client keys (never from clocks), and field access on Values.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "runtime/app_api.hpp"

namespace anvil::growqr {

// The JSON body as a Value: {} when empty, validation.invalid_json otherwise.
Result<Value> json_body(const AppRequest& req);


// The engine's error shape with the status GrowQR's routes answer: 404 for
// unknown things, 409 for state conflicts, 503 for missing configuration,
// else the engine's mapping.
AppResponse error_response(const Error& e);

// An integer setting of the node (ctx.config) in [lo, hi]; `fallback` when
// unset, not a number or out of range.
int64_t config_int(const ActorContext& c, std::string_view key, int64_t fallback, int64_t lo, int64_t hi);
// Lowercase hex SHA-256 of `material`.
std::string sha256_hex(std::string_view material);
// A UUID-shaped id derived from `material` (SHA-256, version nibble 5, RFC
// 4122 variant): the same material always gives the same id.
std::string derived_uuid(std::string_view material);
// True for the 8-4-4-4-12 hex form Postgres' uuid type accepts.
bool is_uuid(std::string_view s);

// Outbound errors (ctx.http): true for a failure the next attempt may not
// have (connect failure, timeout, reset, 408/429/5xx); the HTTP status of an
// outbound.http_status error, else 0.
bool outbound_retryable(const Error& e);
int64_t outbound_status(const Error& e);

// Wall-clock milliseconds since the Unix epoch.
int64_t unix_ms();

// Field access that tolerates missing keys and wrong types: anvil::str_or,
// int_or, bool_or and field_or_null (base/value/value.hpp).

}  // namespace anvil::growqr
