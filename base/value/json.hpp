// JSON for Values with rivetkit's "json-compat" tagging (client-protocol.md
// §8.1). Pure functions.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::json {

// Parses JSON text. With `revive`, 2-element arrays whose first item is a
// string starting with '$' are decoded: ["$BigInt","10"] => BigInt,
// ["$Uint8Array"|"$ArrayBuffer","<b64>"] => Bytes, ["$Undefined",0] =>
// Undefined, ["$Set",[...]] => Array, ["$$x",v] => ["$x",v]; an unknown tag
// is an error. Integral numbers that fit int64 => int64, others => double.
// Errors have group "actor", code "invalid_request".
// Text that is not valid UTF-8 is read as TextDecoder would (U+FFFD for bad
// bytes); lone surrogate escapes (\ud800) become U+FFFD. A repeated object
// key keeps its first position and its last value, as in JSON.parse.
Result<Value> parse(std::string_view text, bool revive = true);

// The revival step of `parse` (rivetkit reviveJsonCompatValue) applied to an
// already decoded Value; cbor::decode uses it for Mode::Compat.
Result<Value> revive(Value v);

// Serializes like JSON.stringify after rivetkit's compat tagging:
// BigInt => ["$BigInt","<dec>"], Bytes => ["$Uint8Array","<b64>"],
// '$'-escaping of user 2-arrays, Undefined dropped from objects and written
// as null inside arrays (top-level Undefined => "null"), NaN/Infinity =>
// null, numbers formatted as JS does (3 not 3.0, 1.5, 1e+21, 1e-7).
// Invalid UTF-8 in strings is replaced with U+FFFD.
std::string dump(const Value& v);

// Base64 helpers shared by the codecs (standard alphabet with padding, and
// url-safe without padding; decode accepts both, with or without padding).
std::string base64_encode(std::span<const uint8_t> bytes, bool url_safe = false);
Result<Bytes> base64_decode(std::string_view text);

}  // namespace anvil::json
