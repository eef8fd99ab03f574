// A Grow Event as GrowQR's services and routes send it, validated once at the
// edge (HTTP or stream) by the one normalizer, with its one dedupe key
// (docs/growqr.md "Events").
#pragma once

#include <optional>
#include <string>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::growqr {

struct GrowEvent {
  std::optional<std::string> id;  // the producer's event id, when it has one
  std::string type;
  std::string user_id;
  std::optional<std::string> mission_instance_id;
  std::optional<std::string> mission_type;
  std::string occurred_at;  // ISO-8601 as sent (validated: a real date, with a zone)
  Value payload;            // always an object
  std::optional<std::string> request_id;
  std::optional<std::string> service_id;
  std::optional<std::string> operation;
  // Derived, never sent: see dedupe_key_for().
  std::string dedupe_key;

  // The wire shape plus "dedupeKey" (what is stored in grow_events.event and
  // what mission actors receive). normalize_grow_event(to_json()) is the identity.
  Value to_json() const;
};

// Limits of the normalizer (bytes of UTF-8 / of the payload's JSON text).
inline constexpr size_t kMaxEventFieldBytes = 256;
inline constexpr size_t kMaxPayloadBytes = 64 * 1024;

// Validates and types one event. Errors are `event.invalid` with a message
// naming the field and metadata {field}; nothing else is reported, so a
// malformed event is rejected whole. Unknown top-level fields are ignored
// (producers may add some); null for an optional field means absent.
Result<GrowEvent> normalize_grow_event(const Value& json);

// The one dedupe key rule: the event's `id` when present; otherwise
//   sha256_hex(JSON.stringify(["growqr.event.v1", requestId, userId,
//                              missionInstanceId ?? null, serviceId ?? null, operation]))
// (lower-case hex). Without an id, requestId and operation are required.
std::string derive_dedupe_key(const std::string& request_id, const std::string& user_id,
                              const std::optional<std::string>& mission_instance_id,
                              const std::optional<std::string>& service_id, const std::string& operation);

// True for "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" naming a real instant.
bool is_iso8601_instant(std::string_view s);

}  // namespace anvil::growqr
