#include "actors/workbench/common.hpp"

#include <algorithm>
#include <chrono>

#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include "base/value/json.hpp"

namespace anvil::workbench {

Error not_found(std::string message) { return make_error("workbench", "not_found", std::move(message)); }
Error invalid_argument(std::string message) {
  return make_error("workbench", "invalid_argument", std::move(message));
}
Error forbidden(std::string message) { return make_error("workbench", "forbidden", std::move(message)); }
Error conflict(std::string message) { return make_error("workbench", "conflict", std::move(message)); }
Error not_configured(std::string message) { return make_error("workbench", "not_configured", std::move(message)); }

Error child_refusal(std::string_view type, std::string_view coordinator) {
  return not_found("No such " + std::string(type) + ": only its " + std::string(coordinator) +
                   " creates one, and it has not created this key.");
}

Result<Value> object_arg(const Array& args, size_t i) {
  if (args.size() <= i || !args[i].is_object())
    return invalid_argument("Argument " + std::to_string(i + 1) + " must be an object.");
  return args[i];
}

Result<std::string> string_field(const Value& o, std::string_view key, size_t max_len,
                                 std::optional<std::string> fallback) {
  const Value* v = o.find(key);
  if (!v || v->is_nullish()) {
    if (fallback) return *fallback;
    return invalid_argument("`" + std::string(key) + "` is required.");
  }
  if (!v->is_string()) return invalid_argument("`" + std::string(key) + "` must be a string.");
  const std::string& s = v->as_string();
  if (s.empty() && !fallback) return invalid_argument("`" + std::string(key) + "` must not be empty.");
  if (s.size() > max_len)
    return invalid_argument("`" + std::string(key) + "` is longer than " + std::to_string(max_len) + " bytes.");
  return s;
}

Result<std::string> string_arg(const Array& args, size_t i, std::string_view what, size_t max_len) {
  if (args.size() <= i || !args[i].is_string() || args[i].as_string().empty())
    return invalid_argument("Argument " + std::to_string(i + 1) + " (" + std::string(what) +
                            ") must be a non-empty string.");
  if (args[i].as_string().size() > max_len)
    return invalid_argument(std::string(what) + " is longer than " + std::to_string(max_len) + " bytes.");
  return args[i].as_string();
}

Status check_id(std::string_view what, std::string_view id) {
  const bool ok = !id.empty() && id.size() <= 128 && id != "." && id != ".." &&
                  std::all_of(id.begin(), id.end(), [](char ch) {
                    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                           ch == '.' || ch == '_' || ch == '-';
                  });
  if (!ok)
    return invalid_argument("`" + std::string(what) + "` must be 1-128 characters of [A-Za-z0-9._-] (got `" +
                            std::string(id.substr(0, 64)) + "`).");
  return Ok{};
}

Status check_branch(std::string_view b) {
  auto bad = [&](const std::string& why) {
    return invalid_argument("`" + std::string(b.substr(0, 64)) + "` is not a valid branch name: " + why + ".");
  };
  if (b.empty() || b.size() > 200) return bad("it must be 1-200 bytes");
  for (char ch : b)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
          ch == '_' || ch == '-' || ch == '/'))
      return bad("only letters, digits and . _ - / are allowed");
  if (b.front() == '-' || b.front() == '/' || b.back() == '/' || b.back() == '.') return bad("bad first or last character");
  if (b.find("..") != std::string_view::npos || b.find("//") != std::string_view::npos ||
      b.find("/.") != std::string_view::npos || b.front() == '.')
    return bad("`..`, `//` and components starting with `.` are not allowed");
  if (b.size() >= 5 && b.substr(b.size() - 5) == ".lock") return bad("it must not end in .lock");
  return Ok{};
}

bool called_by(const ActionContext& c, std::string_view name, const ActorKey& key) {
  const CallerActor* from = c.caller_actor();
  return from && from->name == name && from->key == key;
}

Status require_caller(const ActionContext& c, std::string_view name, const ActorKey& key) {
  if (called_by(c, name, key)) return Ok{};
  return forbidden("Only this actor's " + std::string(name) + " may call this action.");
}

ActorKey key_prefix(const ActorKey& key, size_t n) {
  return ActorKey(key.begin(), key.begin() + static_cast<std::ptrdiff_t>(std::min(n, key.size())));
}

Value key_value(const ActorKey& key) {
  Array a;
  for (const auto& part : key) a.push_back(Value(part));
  return Value(std::move(a));
}

int64_t current_seq(const ActorContext& c) {
  const Value* s = c.state().find("seq");
  return s && s->is_int() ? s->as_int() : 0;
}

void publish(ActorContext& c, const std::string& event, Object fields) {
  const int64_t seq = current_seq(c) + 1;
  c.mutate_state()["seq"] = seq;
  fields.insert(fields.begin(), {"seq", Value(seq)});
  c.broadcast(event, Array{Value(std::move(fields))});
}

// ------------------------------------------------------------ the outbox

const char* const kOutboxTable =
    "CREATE TABLE push_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, "
    "target_key TEXT NOT NULL, action TEXT NOT NULL, arg TEXT NOT NULL)";

namespace {

constexpr const char* kDrain = "_drainOutbox";
constexpr const char* kRetryJob = "outbox";
constexpr int64_t kRetryMs = 5'000;
constexpr int64_t kStaleDrainMs = 120'000;

// Errors a later attempt cannot fix: the push is dropped (and logged) so
// the rows behind it are not held up forever.
bool permanent(const Error& e) {
  return (e.group == "workbench" && (e.code == "forbidden" || e.code == "invalid_argument")) ||
         (e.group == "actor" && (e.code == "action_not_found" || e.code == "not_registered"));
}

constexpr int64_t kBatch = 64;
constexpr int64_t kDrainSliceMs = 5'000;  // then the drain hands over to a fresh one (action time limits)

}  // namespace

Task<Result<Value>> drain_outbox(ActionContext& c) {
  Value& vars = c.vars();
  vars["drainKicked"] = Value();  // a push from now on kicks again
  const int64_t now = now_unix_ms();
  if (const Value* since = vars.find("drainingSince"); since && since->is_int() && now - since->as_int() < kStaleDrainMs)
    co_return Value(false);  // the running drain picks up what was added
  vars["drainingSince"] = now;
  int64_t sent = 0;
  for (;;) {
    if (now_unix_ms() - now > kDrainSliceMs) {
      (void)c.schedule_after(0, kDrain, {});
      break;
    }
    auto rows = c.db().query("SELECT id, target, target_key, action, arg FROM push_outbox ORDER BY id LIMIT ?",
                             {Value(kBatch)});
    if (!rows.ok()) {
      c.vars()["drainingSince"] = Value();
      co_return rows.error();
    }
    if (rows->empty()) {
      (void)c.cancel_schedule(std::string("every:") + kRetryJob);
      break;
    }
    // The first row and the rows after it bound for the same action.
    const Value row = (*rows)[0];
    int64_t last_id = int_or(row, "id", 0);
    auto key = json::parse(str_or(row, "target_key"));
    Array call_args;
    bool corrupt = !key.ok() || !key->is_array();
    for (const auto& r : *rows) {
      if (str_or(r, "target") != str_or(row, "target") || str_or(r, "target_key") != str_or(row, "target_key") ||
          str_or(r, "action") != str_or(row, "action"))
        break;
      auto arg = json::parse(str_or(r, "arg"));
      if (!arg.ok()) {
        corrupt = call_args.empty();
        if (!corrupt) break;  // deliver what precedes it; the bad row comes first next time
        last_id = int_or(r, "id", 0);
        break;
      }
      call_args.push_back(std::move(*arg));
      last_id = int_or(r, "id", 0);
    }
    Result<Value> r = make_error("workbench", "corrupt_outbox", "An outbox row could not be decoded.");
    if (!corrupt) {
      ActorKey target_key;
      for (const auto& part : key->as_array()) target_key.push_back(part.is_string() ? part.as_string() : "");
      std::string target = str_or(row, "target");
      std::string action = str_or(row, "action");
      r = co_await c.call(std::move(target), std::move(target_key), std::move(action), std::move(call_args));
    }
    if (!r.ok() && !permanent(r.error()) && r.error().code != "corrupt_outbox") {
      // Transient (the coordinator is stopping, the disk is full): the
      // recurring schedule tries again.
      spdlog::warn("actor {} ({}): push to {} failed, retrying in {} ms: {}", c.actor_id(), c.name(),
                   str_or(row, "target"), kRetryMs, r.error().qualified());
      break;
    }
    if (!r.ok())
      spdlog::error("actor {} ({}): push to {} ({}) dropped: {} {}", c.actor_id(), c.name(), str_or(row, "target"),
                    str_or(row, "action"), r.error().qualified(), r.error().message);
    if (auto del = c.db().exec("DELETE FROM push_outbox WHERE id <= ?", {Value(last_id)}); !del.ok()) {
      c.vars()["drainingSince"] = Value();
      co_return del.error();
    }
    ++sent;
  }
  c.vars()["drainingSince"] = Value();
  co_return Value(sent);
}

Status outbox_call(ActorContext& c, std::string name, ActorKey key, std::string action, Value arg) {
  auto ins = c.db().exec("INSERT INTO push_outbox (target, target_key, action, arg) VALUES (?, ?, ?, ?)",
                         {Value(std::move(name)), Value(json::dump(key_value(key))), Value(std::move(action)),
                          Value(json::dump(arg))});
  if (!ins.ok()) return ins.error();
  // The safety net first (a crash or a failed call), then the prompt drain.
  if (auto every = c.schedule_every(kRetryJob, kRetryMs, kDrain, {}); !every.ok()) return every.error();
  // One prompt drain at a time: a running drain reads the table until it is
  // empty, and a kicked one not yet started will.
  // (None while the caller delivers inline right after this turn: a
  // scheduled drain starting first would make that delivery a no-op.)
  const Value* kicked = c.vars().find("drainKicked");
  const Value* inline_now = c.vars().find("deliverInline");
  if ((!kicked || !kicked->is_bool()) && !(inline_now && inline_now->is_bool())) {
    if (auto soon = c.schedule_after(0, kDrain, {}); !soon.ok()) return soon.error();
    c.vars()["drainKicked"] = true;
  }
  return Ok{};
}

void deliver_inline(ActorContext& c, bool on) { c.vars()["deliverInline"] = on ? Value(true) : Value(); }

namespace {

Task<Result<Value>> drain_action(ActionContext& c, Array) { co_return co_await drain_outbox(c); }

// Runs `fn` and, when it succeeded, delivers what it put in the outbox
// before answering; a delivery that fails stays in the outbox for the retry
// (the change itself is already durable).
Task<Result<Value>> then_deliver(ActionFn fn, ActionContext& c, Array args) {
  deliver_inline(c, true);
  Result<Value> out = fn(c, args);
  deliver_inline(c, false);
  if (!out.ok()) co_return out;
  auto delivered = co_await drain_outbox(c);
  (void)delivered;
  co_return out;
}

}  // namespace

void with_outbox(ActorDefinition& def) { def.async_action(kDrain, drain_action); }

AsyncActionFn delivered(ActionFn fn) {
  return [fn = std::move(fn)](ActionContext& c, Array args) { return then_deliver(fn, c, std::move(args)); };
}

ActionFn pushes(PushFn one) {
  return [one = std::move(one)](ActionContext& c, const Array& args) -> Result<Value> {
    int64_t applied = 0;
    for (const auto& item : args) {
      auto r = one(c, item);
      if (!r.ok()) return r.error();
      applied += *r ? 1 : 0;
    }
    return Value(applied);
  };
}

Status refuse_internal(const ClientRequest& req) {
  if (req.kind == "action" && !req.name.empty() && req.name.front() == '_')
    return forbidden("`" + req.name + "` is internal to the workbench's actors.");
  return Ok{};
}

namespace {
Task<Status> internal_guard(ActorContext&, ClientRequest req) { co_return refuse_internal(req); }
}  // namespace

void guard_internal(ActorDefinition& def) { def.on_before_connect_async(internal_guard); }

DatabaseOptions database(std::vector<std::string> migrations) {
  DatabaseOptions db;
  db.migrations = std::move(migrations);
  return db;
}

std::string sha256_hex(std::string_view material) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 0xf]);
  }
  return out;
}

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace anvil::workbench
