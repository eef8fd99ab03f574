// CBOR for Values, compatible with what rivetkit 2.3.19's cbor-x 1.6.9
// produces and expects (client-protocol.md §8.2). Pure functions.
#pragma once

#include <cstdint>
#include <span>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::cbor {

enum class Mode {
  // The `encoding: "cbor"` envelope (HTTP bodies / WS frames).
  //  decode: maps (a0.., b9 00NN, indefinite), `1b`/`3b` ints => BigInt,
  //          smaller ints => int64, f9/fa/fb => double (integral doubles stay
  //          double), f7 => Undefined, tag 64 => Bytes, plain byte string =>
  //          Bytes, tags 2/3 bignum (<= 8 bytes) => BigInt, tag 258 (Set) =>
  //          array, tag 1 (Date) => its toISOString() text and tag 0 => its
  //          string (what JSON.stringify would have sent); other tags are
  //          errors; a repeated map key keeps its last value; no compat
  //          revival.
  //  encode: definite-length maps/arrays with minimal headers; int64 in
  //          [-2^32, 2^32-1] minimal, outside that as float64 (a JS number);
  //          double that is integral and in that range (not -0) => int;
  //          BigInt => `1b` (or `3b`) 8-byte form; Bytes => tag 64 + byte
  //          string;
  //          Undefined => f7; user 2-arrays whose first item is a string
  //          starting with '$' get one extra '$' (client revives them).
  Envelope,
  // CBOR-compat payloads (BARE `data` fields, `input` on /actors, rvt-input):
  //  encode: JSON-compat tagging first (BigInt => ["$BigInt","<dec>"],
  //          Bytes => ["$Uint8Array","<b64>"], Undefined => ["$Undefined",0],
  //          '$'-escape), then plain CBOR as in Envelope.
  //  decode: plain CBOR (as Envelope) then revival: ["$BigInt",s] => BigInt,
  //          ["$Uint8Array"|"$ArrayBuffer",b64] => Bytes, ["$Undefined",_] =>
  //          Undefined, ["$Set",[..]] => array, ["$$x",..] => ["$x",..];
  //          unknown "$tag" => error.
  Compat,
  // Anvil's own storage form: lossless round trip of every Value.
  //  int64 always as minimal CBOR int, BigInt always as tag 2/3 bignum,
  //  Bytes as plain byte string, no escaping/revival.
  Storage,
};

Result<Value> decode(std::span<const uint8_t> bytes, Mode mode);
Bytes encode(const Value& v, Mode mode);

}  // namespace anvil::cbor
