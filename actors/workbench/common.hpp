// What the workbench's actor types share (docs/workbench.md): errors,
// argument checks, coordinator checks, sequence-numbered events and the
// durable push-up outbox children use to reach their coordinator.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "runtime/actor_api.hpp"

namespace anvil::workbench {

// Errors (group "workbench"). not_found is also every coordinator-only
// type's creation refusal: a key its coordinator never made does not exist.
Error not_found(std::string message);
Error invalid_argument(std::string message);
Error forbidden(std::string message);
Error conflict(std::string message);
Error not_configured(std::string message);
// The refusal a child type gives anyone but its coordinator.
Error child_refusal(std::string_view type, std::string_view coordinator);

// The action's one object argument, or workbench.invalid_argument.
Result<Value> object_arg(const Array& args, size_t i = 0);
// A string field of `o`: required and non-empty unless `fallback` is given;
// at most `max_len` bytes.
Result<std::string> string_field(const Value& o, std::string_view key, size_t max_len = 256,
                                 std::optional<std::string> fallback = std::nullopt);
// The string argument at `i` (1..max_len bytes).
Result<std::string> string_arg(const Array& args, size_t i, std::string_view what, size_t max_len = 256);
// Ids used in actor keys and file names: [A-Za-z0-9._-]{1,128}, not "." or "..".
Status check_id(std::string_view what, std::string_view id);
// A git branch name git and GitHub accept (a conservative subset of
// git-check-ref-format: [A-Za-z0-9._/-], no "..", "//", "@{", leading '-'
// or '/', trailing '/', ".lock" or '.', at most 200 bytes).
Status check_branch(std::string_view branch);

// True when the action was called by the actor (name, key) — a child's
// check that a push or lifecycle call comes from its own coordinator.
bool called_by(const ActionContext& c, std::string_view name, const ActorKey& key);
Status require_caller(const ActionContext& c, std::string_view name, const ActorKey& key);
// The key's first `n` parts (a child's coordinator key is a prefix of its own).
ActorKey key_prefix(const ActorKey& key, size_t n);
Value key_value(const ActorKey& key);

// Sequence-numbered events: every coordinator keeps state.seq; each change
// it broadcasts carries the next number, and its snapshot action returns the
// current one, so a client that sees a gap refetches the snapshot.
int64_t current_seq(const ActorContext& c);
// Increments state.seq and broadcasts `event` with payload {seq, ...fields}.
void publish(ActorContext& c, const std::string& event, Object fields);

// The durable outbox. A child records each push to its coordinator (and a
// coordinator each call it routes down) in its own database, in the same
// turn as the change it reports, so the two commit together; the outbox is
// drained in order with ctx.call, and a recurring schedule retries after a
// failure and after a crash. Receivers apply pushes idempotently (each
// carries a version), so a push delivered twice changes nothing.
//   migrations: include kOutboxTable; definition: with_outbox(def).
extern const char* const kOutboxTable;
// A receiver of outbox calls: the drain delivers consecutive pushes to the
// same action in one call, one argument each (up to 64); `one` applies one
// item, and the action answers how many it applied. An error fails the whole
// call (nothing of it is kept) and the drain retries it.
using PushFn = std::function<Result<bool>(ActionContext&, const Value& item)>;
ActionFn pushes(PushFn one);
Status outbox_call(ActorContext& c, std::string name, ActorKey key, std::string action, Value arg);
void with_outbox(ActorDefinition& def);
// Delivers the outbox now, in order (a no-op while another delivery runs:
// that one reads the table until it is empty). Changes are written through
// this way, so a coordinator has a child's change by the time the child's
// action answers; the outbox and its schedule remain the durable path.
Task<Result<Value>> drain_outbox(ActionContext& c);
// Around the outbox_calls of one turn whose action then calls drain_outbox
// itself: no prompt drain is scheduled for them (the recurring safety net
// still is). Set and clear within one turn.
void deliver_inline(ActorContext& c, bool on);
// An action that delivers its outbox before it answers.
AsyncActionFn delivered(ActionFn fn);

// The client guard every workbench type has: actions named `_...` are
// internal (pushes, lifecycle) and refused to clients over HTTP; the
// actions themselves also check their caller (WebSocket actions are not
// guarded one by one).
Status refuse_internal(const ClientRequest& req);
void guard_internal(ActorDefinition& def);
// A database of `migrations` (the outbox table included with `outbox`).
DatabaseOptions database(std::vector<std::string> migrations);

// Lowercase hex SHA-256 (session tokens are indexed by their hash only).
std::string sha256_hex(std::string_view material);

// Wall-clock milliseconds since the Unix epoch.
int64_t now_unix_ms();
// Field access: anvil::str_or / int_or / bool_or (base/value/value.hpp).

}  // namespace anvil::workbench
