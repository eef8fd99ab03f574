#include "actors/growqr/memory/memory_actor.hpp"

#include <random>

#include <spdlog/spdlog.h>

#include "actors/growqr/app.hpp"
#include "actors/growqr/memory/memory_path.hpp"
#include "actors/growqr/memory/memory_store.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

constexpr size_t kMaxContent = 100 * 1024;  // KV values are at most 128 KiB
constexpr int kMaxAttempts = 8;             // stale-sha re-reads per write
constexpr int64_t kRecoverMs = 2000;
constexpr size_t kMaxSessionContent = 256 * 1024;

const std::string& user_of(const ActorContext& c) { return c.key().at(0); }

std::string generation(ActorContext& c) { return str_or(c.vars(), "gen"); }

Error invalid_args(const std::string& what) { return make_error("validation", "invalid_args", what); }

// (path, content) from positional args or one {path, content} object.
struct PathArgs {
  std::string path, content;
  bool has_content = false;
};
Result<PathArgs> path_args(const Array& args, bool want_content, const char* usage) {
  PathArgs out;
  if (!args.empty() && args[0].is_object()) {
    const Value* p = args[0].find("path");
    const Value* t = args[0].find("content");
    if (!p || !p->is_string()) return invalid_args(usage);
    out.path = p->as_string();
    if (t && t->is_string()) out.content = t->as_string(), out.has_content = true;
  } else {
    if (args.empty() || !args[0].is_string()) return invalid_args(usage);
    out.path = args[0].as_string();
    if (args.size() > 1 && args[1].is_string()) out.content = args[1].as_string(), out.has_content = true;
  }
  if (want_content && !out.has_content) return invalid_args(usage);
  if (out.content.size() > kMaxContent)
    return make_error("memory", "too_large", "A memory file holds at most 100 KiB.",
                      obj({{"size", static_cast<int64_t>(out.content.size())}}));
  auto norm = normalize_memory_path(out.path);
  if (!norm.ok()) return norm.error();
  out.path = *norm;
  return out;
}

// ------------------------------------------------------------------ L1

void l1_apply_write(ActorContext& c, const std::string& path, const std::string& content, const Value& ack) {
  Value& files = c.mutate_state()["files"];
  if (!files.is_object()) files = Object{};
  files[path] = obj({{"sha", field_or_null(ack, "sha")},
                     {"commit", field_or_null(ack, "commit")},
                     {"size", static_cast<int64_t>(content.size())},
                     {"updatedAt", unix_ms()}});
  (void)c.kv_put("f/" + path, content);  // a cache: a failed put only costs a later L3 read
}

void l1_forget(ActorContext& c, const std::string& path) {
  Value& files = c.mutate_state()["files"];
  if (files.is_object())
    std::erase_if(files.as_object(), [&](const auto& field) { return field.first == path; });
  (void)c.kv_delete("f/" + path);
}

// ------------------------------------------------------------------ pending L3 operations

void ensure_recover_schedule(ActorContext& c) {
  if (!str_or(c.state(), "recoverSchedule").empty()) return;
  auto id = c.schedule_after(kRecoverMs, "recoverMemoryOps", {});
  if (id.ok()) c.mutate_state()["recoverSchedule"] = *id;
}

void drop_recover_schedule_when_idle(ActorContext& c) {
  const Value& ops = field_or_null(c.state(), "ops");
  if (ops.is_array() && !ops.as_array().empty()) return;
  const std::string id = str_or(c.state(), "recoverSchedule");
  if (id.empty()) return;
  (void)c.cancel_schedule(id);  // a schedule that already fired is simply gone
  c.mutate_state()["recoverSchedule"] = "";
}

Value* find_op(ActorContext& c, int64_t id) {
  Value& ops = c.mutate_state()["ops"];
  if (!ops.is_array()) ops = Array{};
  for (auto& op : ops.as_array())
    if (int_or(op, "id", -1) == id) return &op;
  return nullptr;
}

// Registers an operation in the state (and its content in KV): durable with
// the turn, before any L3 call. An unacknowledged operation of an earlier
// generation on the same path is superseded (dropped): it was never
// acknowledged, and this newer one decides the file's content.
int64_t begin_op(ActorContext& c, const std::string& kind, const std::string& path, const std::string& content) {
  Value& s = c.mutate_state();
  const int64_t id = int_or(s, "opSeq", 0) + 1;
  s["opSeq"] = id;
  Value& ops = s["ops"];
  if (!ops.is_array()) ops = Array{};
  const std::string gen = generation(c);
  auto& list = ops.as_array();
  for (auto it = list.begin(); it != list.end();) {
    if (str_or(*it, "path") == path && str_or(*it, "gen") != gen) {
      (void)c.kv_delete("op/" + std::to_string(int_or(*it, "id", 0)));
      it = list.erase(it);
    } else {
      ++it;
    }
  }
  list.push_back(obj({{"id", id}, {"kind", kind}, {"path", path}, {"gen", gen}, {"at", unix_ms()}}));
  if (kind == "write") (void)c.kv_put("op/" + std::to_string(id), content);
  ensure_recover_schedule(c);
  return id;
}

void end_op(ActorContext& c, int64_t id) {
  Value& ops = c.mutate_state()["ops"];
  if (ops.is_array()) {
    auto& list = ops.as_array();
    for (auto it = list.begin(); it != list.end(); ++it)
      if (int_or(*it, "id", -1) == id) {
        list.erase(it);
        break;
      }
  }
  (void)c.kv_delete("op/" + std::to_string(id));
  drop_recover_schedule_when_idle(c);
}

// True while an older live operation on the same path runs: operations on
// one path apply in arrival order.
bool waits_for_older(ActorContext& c, int64_t id, const std::string& path) {
  const Value& ops = field_or_null(c.state(), "ops");
  if (!ops.is_array()) return false;
  const std::string gen = generation(c);
  for (const auto& op : ops.as_array())
    if (int_or(op, "id", 0) < id && str_or(op, "path") == path && str_or(op, "gen") == gen) return true;
  return false;
}

std::string op_key(const ActorContext& c, int64_t id) {
  return "mem-" + sha256_hex(c.actor_id() + ":" + std::to_string(id)).substr(0, 32);
}

// ------------------------------------------------------------------ L3

Result<std::unique_ptr<MemoryStore>> store_for(ActorContext& c) { return make_memory_store(c, user_of(c)); }

Task<Status> ensure_ready(ActorContext& c, MemoryStore& store) {
  const std::string where = store.backend() + ":" + store.location();
  if (str_or(c.state(), "l3Ready") == where) co_return Ok{};
  auto st = co_await store.ensure_ready(c);
  if (!st.ok()) co_return st;
  c.mutate_state()["l3Ready"] = where;
  // The repository in the `repos` registry (seed 001); best effort.
  const std::string user = user_of(c), location = store.location();
  std::function<Result<Value>(pg::Tx&)> fn = [user, location](pg::Tx& tx) -> Result<Value> {
    auto u = tx.exec("INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING", {user});
    if (!u.ok()) return u.error();
    auto r = tx.exec(
        "INSERT INTO repos (user_id, name, clone_url) VALUES ($1, 'growqr-memory', $2) "
        "ON CONFLICT (user_id, name) DO UPDATE SET clone_url = EXCLUDED.clone_url",
        {user, location});
    if (!r.ok()) return r.error();
    return true;
  };
  auto mirrored = co_await c.sql_transaction(std::move(fn));
  if (!mirrored.ok() && mirrored.error().qualified() != "db.not_configured")
    spdlog::warn("memory repo not mirrored to repos userId={}: {}", user, mirrored.error().message);
  co_return Ok{};
}

// Makes `content` the file's content in at most one new commit: the file is
// read first (identical content commits nothing, which is what makes a
// re-run after a crash harmless), the write names the sha it read, and a
// conflict (another writer got in between) re-reads and tries again.
Task<Result<Value>> put_file(ActorContext& c, MemoryStore& store, std::string path, std::string content,
                             std::string key) {
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    auto cur = co_await store.read(c, path);
    if (!cur.ok()) co_return cur.error();
    if (cur->has_value() && (*cur)->content == content)
      co_return obj({{"sha", (*cur)->sha}, {"commit", Value()}, {"unchanged", true}});
    const std::string expected = cur->has_value() ? (*cur)->sha : "";
    const std::string message = (expected.empty() ? "memory: add " : "memory: update ") + path;
    const std::string attempt_key = key + "-" + std::to_string(attempt);
    auto w = co_await store.write(c, path, content, expected, message, attempt_key);
    if (w.ok()) co_return obj({{"sha", w->sha}, {"commit", w->commit}, {"unchanged", false}});
    if (w.error().code != "conflict" && w.error().code != "not_found") co_return w.error();
    spdlog::info("memory write conflict userId={} path={} retryAttempt={}: re-reading", user_of(c), path, attempt);
  }
  co_return make_error("memory", "conflict", "The file `" + path + "` kept changing; gave up after 8 attempts.");
}

Task<Result<Value>> delete_file(ActorContext& c, MemoryStore& store, std::string path, std::string key) {
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    auto cur = co_await store.read(c, path);
    if (!cur.ok()) co_return cur.error();
    if (!cur->has_value()) co_return obj({{"deleted", false}, {"commit", Value()}});
    const std::string sha = (*cur)->sha, message = "memory: delete " + path;
    const std::string attempt_key = key + "-" + std::to_string(attempt);
    auto w = co_await store.remove(c, path, sha, message, attempt_key);
    if (w.ok()) co_return obj({{"deleted", true}, {"commit", w->commit}});
    if (w.error().code != "conflict" && w.error().code != "not_found") co_return w.error();
  }
  co_return make_error("memory", "conflict", "The file `" + path + "` kept changing; gave up after 8 attempts.");
}

// Runs one registered operation against L3 and applies it to L1.
Task<Result<Value>> run_op(ActorContext& c, MemoryStore& store, int64_t id, std::string kind, std::string path,
                           std::string content) {
  const std::string key = op_key(c, id);
  if (kind == "write") {
    auto r = co_await put_file(c, store, path, content, key);
    if (r.ok()) l1_apply_write(c, path, content, *r);
    co_return r;
  }
  auto r = co_await delete_file(c, store, path, key);
  if (r.ok()) l1_forget(c, path);
  co_return r;
}

// Completes operations a previous generation (a crashed or stopped node)
// left behind, and queued writes, oldest first. One that fails goes back to
// the pile for the next recovery run; draining stops there (L3 is probably
// down). One drain at a time (a flag in vars): two would run two operations
// on one path concurrently and could land them out of order.
Task<void> drain_orphans(ActorContext& c, MemoryStore& store) {
  if (const Value* d = c.vars().find("draining"); d && d->is_bool() && d->as_bool()) co_return;
  c.vars()["draining"] = true;  // reset at both exits below (vars die with the generation anyway)
  for (;;) {
    const std::string gen = generation(c);
    int64_t id = 0;
    std::string kind, path;
    for (const auto& op : field_or_null(c.state(), "ops").is_array() ? field_or_null(c.state(), "ops").as_array() : Array{})
      if (str_or(op, "gen") != gen) {
        id = int_or(op, "id", 0), kind = str_or(op, "kind"), path = str_or(op, "path");
        break;
      }
    if (id == 0) {
      c.vars()["draining"] = false;
      co_return;
    }
    (*find_op(c, id))["gen"] = gen;  // claimed by this generation
    std::string content;
    if (kind == "write") {
      auto stored = c.kv_get("op/" + std::to_string(id));
      if (!stored.ok() || !stored->has_value()) {
        end_op(c, id);  // nothing to write: the registration is incomplete
        continue;
      }
      content = **stored;
    }
    spdlog::info("memory op run by recovery (queued, or left by an earlier generation) userId={} opId={} kind={} path={}", user_of(c), id, kind, path);
    auto r = co_await run_op(c, store, id, kind, path, content);
    if (r.ok()) {
      end_op(c, id);
      continue;
    }
    spdlog::warn("memory op still pending userId={} opId={} path={}: {}", user_of(c), id, path, r.error().message);
    if (Value* op = find_op(c, id)) (*op)["gen"] = "";
    c.vars()["draining"] = false;
    co_return;
  }
}

// commitMemory / deleteMemory share this: register, get L3 ready, wait for
// older operations on the path, run, acknowledge.
Task<Result<Value>> mutate(ActionContext& c, std::string kind, std::string path, std::string content) {
  auto store = store_for(c);
  if (!store.ok()) co_return store.error();
  const int64_t id = begin_op(c, kind, path, content);
  auto ready = co_await ensure_ready(c, **store);
  if (!ready.ok()) {
    end_op(c, id);
    co_return ready.error();
  }
  co_await drain_orphans(c, **store);
  while (waits_for_older(c, id, path)) {
    auto slept = co_await c.sleep_for(std::chrono::milliseconds(20));
    if (!slept.ok()) co_return slept.error();
  }
  auto r = co_await run_op(c, **store, id, kind, path, content);
  end_op(c, id);
  if (!r.ok()) {
    spdlog::warn("memory {} failed userId={} path={}: {}", kind, user_of(c), path, r.error().message);
    co_return r.error();
  }
  Value out = *r;
  out["path"] = path;
  spdlog::info("memory {} userId={} path={} commit={}", kind, user_of(c), path,
               field_or_null(out, "commit").is_string() ? field_or_null(out, "commit").as_string() : "(unchanged)");
  co_return out;
}

Task<Result<Value>> commit_memory(ActionContext& c, Array args) {
  auto a = path_args(args, true, "commitMemory(path, content) takes a path and a content string.");
  if (!a.ok()) co_return a.error();
  std::string kind = "write", path = a->path, content = a->content;
  co_return co_await mutate(c, kind, path, content);
}

Task<Result<Value>> delete_memory(ActionContext& c, Array args) {
  auto a = path_args(args, false, "deleteMemory(path) takes a path.");
  if (!a.ok()) co_return a.error();
  std::string kind = "delete", path = a->path, none;
  co_return co_await mutate(c, kind, path, none);
}

Task<Result<Value>> read_memory(ActionContext& c, Array args) {
  auto a = path_args(args, false, "readMemory(path) takes a path.");
  if (!a.ok()) co_return a.error();
  const std::string path = a->path;
  if (field_or_null(c.state(), "files").find(path)) {
    auto cached = c.kv_get("f/" + path);
    if (cached.ok() && cached->has_value()) co_return Value(**cached);
  }
  auto store = store_for(c);
  if (!store.ok()) co_return store.error();
  auto ready = co_await ensure_ready(c, **store);
  if (!ready.ok()) co_return ready.error();
  auto file = co_await (*store)->read(c, path);
  if (!file.ok()) co_return file.error();
  if (!file->has_value())
    co_return make_error("memory", "not_found", "No memory file `" + path + "`.", obj({{"path", path}}));
  l1_apply_write(c, path, (*file)->content, obj({{"sha", (*file)->sha}, {"commit", Value()}}));
  co_return Value((*file)->content);
}

// L3 is the truth for listings; the L1 index follows it (a file changed or
// removed elsewhere drops its cached content). While L3 is unreachable the
// L1 index answers (logged), so the agent still sees what it wrote.
Task<Result<Value>> list_memory(ActionContext& c, Array args) {
  std::string prefix;
  if (!args.empty() && args[0].is_object()) {
    prefix = str_or(args[0], "prefix");
  } else if (!args.empty() && args[0].is_string()) {
    prefix = args[0].as_string();
  } else if (!args.empty() && !args[0].is_null() && !args[0].is_undefined()) {
    co_return invalid_args("listMemory(prefix?) takes an optional prefix string.");
  }
  auto norm = normalize_memory_prefix(prefix);
  if (!norm.ok()) co_return norm.error();
  prefix = *norm;
  Array out;
  auto store = store_for(c);
  Result<std::vector<MemoryFile>> files = store.ok() ? Result<std::vector<MemoryFile>>(std::vector<MemoryFile>{})
                                                     : Result<std::vector<MemoryFile>>(store.error());
  if (store.ok()) {
    auto ready = co_await ensure_ready(c, **store);
    if (ready.ok()) {
      files = co_await (*store)->list(c);
    } else {
      files = ready.error();
    }
  }
  if (!files.ok()) {
    spdlog::warn("memory list from L1 only userId={}: {}", user_of(c), files.error().message);
    const Value& index = field_or_null(c.state(), "files");
    if (index.is_object())
      for (const auto& [path, _] : index.as_object())
        if (path.rfind(prefix, 0) == 0) out.push_back(Value(path));
    co_return Value(std::move(out));
  }
  std::map<std::string, std::string> l3;
  for (const auto& f : *files)
    if (f.path.size() > 3 && f.path.compare(f.path.size() - 3, 3, ".md") == 0) l3[f.path] = f.sha;
  const Value index = field_or_null(c.state(), "files");
  if (index.is_object())
    for (const auto& [path, entry] : index.as_object()) {
      auto it = l3.find(path);
      if (it == l3.end() || it->second != str_or(entry, "sha")) l1_forget(c, path);
    }
  for (const auto& [path, _] : l3)
    if (path.rfind(prefix, 0) == 0) out.push_back(Value(path));
  co_return Value(std::move(out));
}

Task<Result<Value>> recover_ops(ActionContext& c, Array) {
  c.mutate_state()["recoverSchedule"] = "";  // the one that fired
  const Value& ops = field_or_null(c.state(), "ops");
  if (!ops.is_array() || ops.as_array().empty()) co_return Value(0);
  ensure_recover_schedule(c);  // in this first turn: a crash below still leaves a schedule
  auto store = store_for(c);
  if (!store.ok()) co_return store.error();
  auto ready = co_await ensure_ready(c, **store);
  if (ready.ok()) co_await drain_orphans(c, **store);
  drop_recover_schedule_when_idle(c);
  co_return Value(static_cast<int64_t>(field_or_null(c.state(), "ops").as_array().size()));
}

// ------------------------------------------------------------------ L2

Result<std::string> string_arg(const Array& args, size_t i, const char* usage) {
  if (args.size() <= i || !args[i].is_string() || args[i].as_string().empty()) return invalid_args(usage);
  if (args[i].as_string().size() > 256) return invalid_args(usage);
  return args[i].as_string();
}

Task<Result<Value>> commit_session_memory(ActionContext& c, Array args) {
  const char* usage = "commitSessionMemory(sessionId, key, content) takes three strings.";
  auto session = string_arg(args, 0, usage);
  auto key = string_arg(args, 1, usage);
  if (!session.ok()) co_return session.error();
  if (!key.ok()) co_return key.error();
  if (args.size() < 3 || !args[2].is_string()) co_return invalid_args(usage);
  const std::string content = args[2].as_string();
  if (content.size() > kMaxSessionContent)
    co_return make_error("memory", "too_large", "A session memory entry holds at most 256 KiB.");
  const std::string user = user_of(c), sid = *session, k = *key;
  std::function<Result<Value>(pg::Tx&)> fn = [user, sid, k, content](pg::Tx& tx) -> Result<Value> {
    auto u = tx.exec("INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING", {user});
    if (!u.ok()) return u.error();
    auto r = tx.exec(
        "INSERT INTO session_memory (user_id, session_id, key, content) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (user_id, session_id, key) DO UPDATE SET content = EXCLUDED.content, updated_at = now()",
        {user, sid, k, content});
    if (!r.ok()) return r.error();
    return true;
  };
  auto r = co_await c.sql_transaction(std::move(fn));
  if (!r.ok()) co_return r.error();
  co_return obj({{"sessionId", sid}, {"key", k}});
}

Task<Result<Value>> read_session_memory(ActionContext& c, Array args) {
  const char* usage = "readSessionMemory(sessionId, key?) takes a session id and an optional key.";
  auto session = string_arg(args, 0, usage);
  if (!session.ok()) co_return session.error();
  const std::string user = user_of(c);
  if (args.size() > 1 && args[1].is_string()) {
    std::string q = "SELECT content FROM session_memory WHERE user_id = $1 AND session_id = $2 AND key = $3";
    Array params{Value(user), Value(*session), args[1]};
    auto r = co_await c.sql(std::move(q), std::move(params));
    if (!r.ok()) co_return r.error();
    if (r->rows.empty())
      co_return make_error("memory", "not_found", "No session memory `" + args[1].as_string() + "`.",
                           obj({{"sessionId", *session}, {"key", args[1]}}));
    co_return field_or_null(r->rows[0], "content");
  }
  std::string q = "SELECT key, content FROM session_memory WHERE user_id = $1 AND session_id = $2 ORDER BY key";
  Array params{Value(user), Value(*session)};
  auto r = co_await c.sql(std::move(q), std::move(params));
  if (!r.ok()) co_return r.error();
  Value out = Object{};
  for (const auto& row : r->rows) out[str_or(row, "key")] = field_or_null(row, "content");
  co_return out;
}

Task<Result<Value>> clear_session_memory(ActionContext& c, Array args) {
  auto session = string_arg(args, 0, "clearSessionMemory(sessionId) takes a session id.");
  if (!session.ok()) co_return session.error();
  std::string q = "DELETE FROM session_memory WHERE user_id = $1 AND session_id = $2";
  Array params{Value(user_of(c)), Value(*session)};
  auto r = co_await c.sql(std::move(q), std::move(params));
  if (!r.ok()) co_return r.error();
  co_return obj({{"sessionId", *session}, {"deleted", static_cast<int64_t>(r->affected)}});
}

// Queue `write` (seed 000: "Queue writes exist"): {path, content} or {path,
// delete: true}. The handler only registers the operation — durable in the
// same commit that removes the message, so it happens exactly once — as one
// no generation has claimed; recovery (recoverMemoryOps, scheduled at once)
// then runs it against L3 in id order, retrying every 2 s while L3 is down.
// A sender that waits gets {queued: true, opId, path}: durable, not yet in git.
Result<Value> queued_write(ActorContext& c, const QueueMessage& msg) {
  const char* usage = "queue `write` takes {path, content} or {path, delete: true}.";
  if (!msg.body.is_object()) return invalid_args(usage);
  const Value* del = msg.body.find("delete");
  const bool is_delete = del && del->is_bool() && del->as_bool();
  auto a = path_args(Array{msg.body}, !is_delete, usage);
  if (!a.ok()) return a.error();
  Value& s = c.mutate_state();
  const int64_t id = int_or(s, "opSeq", 0) + 1;
  s["opSeq"] = id;
  Value& ops = s["ops"];
  if (!ops.is_array()) ops = Array{};
  const std::string kind = is_delete ? "delete" : "write";
  ops.as_array().push_back(
      obj({{"id", id}, {"kind", kind}, {"path", a->path}, {"gen", ""}, {"at", unix_ms()}, {"queued", true}}));
  if (!is_delete) {
    auto put = c.kv_put("op/" + std::to_string(id), a->content);
    if (!put.ok()) return put.error();
  }
  // Recovery now rather than in 2 s.
  if (const std::string old = str_or(s, "recoverSchedule"); !old.empty()) (void)c.cancel_schedule(old);
  s["recoverSchedule"] = "";
  auto sched = c.schedule_after(0, "recoverMemoryOps", {});
  if (sched.ok()) c.mutate_state()["recoverSchedule"] = *sched;
  spdlog::info("memory {} queued userId={} path={} opId={}", kind, user_of(c), a->path, id);
  return obj({{"queued", true}, {"opId", id}, {"path", a->path}});
}

Result<Value> memory_status(ActionContext& c, const Array&) {
  auto store = store_for(c);
  const Value& files = field_or_null(c.state(), "files");
  return obj({{"userId", user_of(c)},
              {"backend", store.ok() ? Value((*store)->backend()) : Value()},
              {"location", store.ok() ? Value((*store)->location()) : Value()},
              {"error", store.ok() ? Value() : Value(store.error().message)},
              {"files", files.is_object() ? static_cast<int64_t>(files.as_object().size()) : int64_t{0}},
              {"pendingOps", field_or_null(c.state(), "ops")}});
}

}  // namespace

ActorDefinition memory_actor() {
  ActorDefinition def("memoryActor");
  def.create_state([](ActorContext& c, const Value&) -> Result<Value> {
       const ActorKey& key = c.key();
       if (key.size() != 1 || key[0].empty() || key[0].size() > 256)
         return make_error("validation", "invalid_key", "memoryActor's key is [userId].");
       return obj({{"userId", key[0]}, {"files", Object{}}, {"ops", Array{}}, {"opSeq", 0}, {"recoverSchedule", ""}});
     })
      .create_vars([](ActorContext&) -> Result<Value> {
        // Identifies this generation: operations registered by an earlier
        // one (before a crash or stop) are orphans that recovery completes.
        std::random_device rd;
        return obj({{"gen", std::to_string(rd()) + "-" + std::to_string(rd())}});
      })
      .async_action("listMemory", list_memory)
      .async_action("readMemory", read_memory)
      .async_action("commitMemory", commit_memory)
      .async_action("deleteMemory", delete_memory)
      .async_action("commitSessionMemory", commit_session_memory)
      .async_action("readSessionMemory", read_session_memory)
      .async_action("clearSessionMemory", clear_session_memory)
      .async_action("recoverMemoryOps", recover_ops)
      .queue("write", queued_write)
      .action("getMemoryStatus", memory_status);
  return def;
}

void add_memory(AppDefinition& app) { app.actor(memory_actor()); }

}  // namespace anvil::growqr
