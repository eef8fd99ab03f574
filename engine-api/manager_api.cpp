#include "engine-api/manager_api.hpp"

#include <cstdlib>
#include <optional>

#include "base/value/cbor.hpp"
#include "base/value/json.hpp"
#include "runtime/inspect.hpp"

namespace anvil {
namespace {

constexpr const char* kVersion = "0.1.0";

Error invalid_input(std::string why) { return make_error("validation", "invalid_input", std::move(why)); }

// A `limit` query value: a whole number from 1 to `max`, else nullopt.
std::optional<size_t> parse_limit(const std::string& v, long long max) {
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < 1 || n > max) return std::nullopt;
  return static_cast<size_t>(n);
}

std::string namespace_of(const http::Request& req) {
  auto q = http::parse_query(req.query);
  auto ns = http::query_value(q, "namespace");
  return ns && !ns->empty() ? *ns : "default";
}

Value opt_ts(const std::optional<int64_t>& t) { return t ? Value(*t) : Value(); }

// Parses the PUT/POST /actors body into a CreateRequest.
Result<CreateRequest> parse_create(const http::Request& req) {
  auto body = json::parse(req.body, /*revive=*/false);
  if (!body.ok() || !body->is_object()) return invalid_input("Request body must be a JSON object.");
  CreateRequest cr;
  cr.namespace_name = namespace_of(req);
  const Value* name = body->find("name");
  if (!name || !name->is_string() || name->as_string().empty())
    return invalid_input("`name` is required.");
  if (name->as_string().size() > 64) return invalid_input("`name` exceeds 64 characters.");
  cr.name = name->as_string();
  const Value* key = body->find("key");
  if (key && !key->is_nullish()) {
    if (!key->is_string()) return invalid_input("`key` must be a serialized key string.");
    cr.key = deserialize_key(key->as_string());
  }
  if (const Value* r = body->find("runner_name_selector"); r && r->is_string())
    cr.runner_name_selector = r->as_string();
  if (const Value* c = body->find("crash_policy"); c && c->is_string()) {
    const auto& p = c->as_string();
    if (p != "sleep" && p != "restart" && p != "destroy")
      return invalid_input("`crash_policy` must be one of sleep, restart, destroy.");
    cr.crash_policy = p;
  }
  if (const Value* d = body->find("datacenter"); d && d->is_string()) cr.datacenter = d->as_string();
  if (const Value* in = body->find("input"); in && !in->is_nullish()) {
    if (!in->is_string()) return invalid_input("`input` must be base64 CBOR.");
    auto bytes = json::base64_decode(in->as_string());
    if (!bytes.ok()) return invalid_input("`input` is not valid base64.");
    if (bytes->size() > 4 * 1024 * 1024)
      return make_error("actor", "input_too_large", "Actor input exceeds 4 MiB.");
    auto v = cbor::decode(*bytes, cbor::Mode::Compat);
    if (!v.ok()) return invalid_input("`input` is not valid CBOR: " + v.error().message);
    cr.input = std::move(*v);
  }
  return cr;
}

}  // namespace

Value ManagerApi::actor_json(const ActorInfo& a) {
  return obj({{"actor_id", a.actor_id},
              {"name", a.name},
              {"key", a.key},
              {"namespace_id", a.namespace_name},
              {"datacenter", a.datacenter},
              {"runner_name_selector", a.runner_name_selector},
              {"crash_policy", a.crash_policy},
              {"create_ts", a.create_ts},
              {"start_ts", opt_ts(a.start_ts)},
              {"pending_allocation_ts", Value()},
              {"connectable_ts", opt_ts(a.connectable_ts)},
              {"sleep_ts", opt_ts(a.sleep_ts)},
              {"reschedule_ts", Value()},
              {"destroy_ts", Value()}});
}

asio::awaitable<http::Response> ManagerApi::handle(const http::Request& req, std::string_view path) {
  auto segs = http::split_path(path);
  const std::string& m = req.method;
  if (segs.size() == 1 && segs[0] == "metadata" && m == "GET") {
    Object names;
    for (const auto& n : rt_.registry().names()) names.emplace_back(n, obj({{"metadata", Object{}}}));
    co_return http::json_response(
        200, obj({{"runtime", "anvil"}, {"version", kVersion}, {"rivetkit", kRivetkitVersion},
                  {"actorNames", Value(std::move(names))}}));
  }
  if (segs.size() == 1 && segs[0] == "actors") {
    if (m == "PUT") co_return co_await put_actors(req);
    if (m == "POST") co_return co_await post_actors(req);
    if (m == "GET") co_return co_await get_actors(req);
  }
  if (segs.size() == 2 && segs[0] == "actors" && segs[1] == "names" && m == "GET") {
    Object names;
    for (const auto& n : rt_.registry().names()) names.emplace_back(n, obj({{"metadata", Object{}}}));
    co_return http::json_response(
        200, obj({{"names", Value(std::move(names))}, {"pagination", obj({{"cursor", Value()}})}}));
  }
  if (segs.size() == 3 && segs[0] == "actors" && segs[2] == "workflow" && m == "GET") {
    // Operator view of an actor's workflow history.
    auto id = http::percent_decode(segs[1]).value_or(std::string(segs[1]));
    auto h = rt_.workflow_history(id);
    if (!h.ok()) co_return http::error_response(h.error());
    co_return http::json_response(200, obj({{"actor_id", id}, {"history", *h}}));
  }
  if (segs.size() >= 2 && segs.size() <= 5 && segs[0] == "admin" && segs[1] == "actors") {
    // Named first: GCC 12 miscompiles conditional temporaries in a co_await
    // expression's arguments (ASan: a read past `segs` when it had 3).
    const std::string_view id = segs.size() >= 3 ? segs[2] : std::string_view();
    const std::string_view part = segs.size() >= 4 ? segs[3] : std::string_view();
    const std::string_view sub = segs.size() == 5 ? segs[4] : std::string_view();
    co_return co_await admin_actors(req, id, part, sub);
  }
  if (segs.size() == 5 && segs[0] == "actors" && segs[2] == "kv" && segs[3] == "keys" && m == "GET")
    co_return co_await kv_get(segs[1], segs[4]);
  if (segs.size() == 1 && segs[0] == "health" && m == "GET") {
    // 200 while writes are accepted; 503 with the reason while the storage
    // refuses them (reads still work then).
    std::string storage = rt_.storage_state();
    if (storage == "ok") co_return http::json_response(200, obj({{"status", "ok"}}));
    co_return http::json_response(503, obj({{"status", "degraded"}, {"storage", storage}}));
  }
  if (segs.size() == 1 && segs[0] == "metrics" && m == "GET") {
    http::Response r;
    r.headers.emplace_back("content-type", "text/plain; version=0.0.4");
    r.body = rt_.metrics_text();
    co_return r;
  }
  if (segs.size() == 2 && segs[0] == "actors" && m == "DELETE")
    co_return co_await delete_actor(segs[1]);
  if (segs.size() == 1 && segs[0] == "datacenters" && m == "GET") {
    co_return http::json_response(
        200, obj({{"datacenters", arr({obj({{"label", 1}, {"name", "default"}})})},
                  {"pagination", obj({{"cursor", Value()}})}}));
  }
  co_return http::error_response(
      make_error("api", "not_found", "The requested resource was not found"));
}

asio::awaitable<http::Response> ManagerApi::put_actors(const http::Request& req) {
  auto cr = parse_create(req);
  if (!cr.ok()) co_return http::error_response(cr.error());
  auto r = rt_.get_or_create(*cr);
  if (!r.ok()) co_return http::error_response(r.error());
  if (auto st = co_await rt_.durable(r->seq); !st.ok()) co_return http::error_response(st.error());
  co_return http::json_response(200, obj({{"actor", actor_json(r->info)}, {"created", r->created}}));
}

asio::awaitable<http::Response> ManagerApi::post_actors(const http::Request& req) {
  auto cr = parse_create(req);
  if (!cr.ok()) co_return http::error_response(cr.error());
  auto r = rt_.create(*cr);
  if (!r.ok()) co_return http::error_response(r.error());
  if (auto st = co_await rt_.durable(r->seq); !st.ok()) co_return http::error_response(st.error());
  co_return http::json_response(200, obj({{"actor", actor_json(r->info)}}));
}

asio::awaitable<http::Response> ManagerApi::get_actors(const http::Request& req) {
  auto q = http::parse_query(req.query);
  const std::string ns = namespace_of(req);
  // Only actors whose create record is durable are listed: the listing
  // opens once they are (a crash cannot erase a listed actor).
  std::optional<Pending<std::vector<ActorInfo>>> listing;
  if (auto ids = http::query_value(q, "actor_ids")) {
    std::vector<std::string> wanted;
    size_t start = 0;
    for (;;) {
      size_t comma = ids->find(',', start);
      wanted.push_back(ids->substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    listing.emplace(rt_.list_by_ids(wanted));
  } else if (auto name = http::query_value(q, "name")) {
    auto limit = http::query_value(q, "limit");
    auto cursor = http::query_value(q, "cursor");
    if (auto key = http::query_value(q, "key")) {
      listing.emplace(rt_.list_by_key(ns, *name, deserialize_key(*key)));
    } else if (limit || cursor) {
      // Paged: key order, read from storage page by page.
      size_t n = 100;
      if (limit) {
        auto v = parse_limit(*limit, 10000);
        if (!v) co_return http::error_response(invalid_input("`limit` must be a number from 1 to 10000."));
        n = *v;
      }
      const std::string after = cursor.value_or("");
      Pending<ActorPage> pending = rt_.list_page(ns, *name, after, n);
      auto page = co_await rt_.once_durable(std::move(pending));
      if (!page.ok()) co_return http::error_response(page.error());
      Array actors;
      for (const auto& a : page->actors) actors.push_back(actor_json(a));
      co_return http::json_response(
          200, obj({{"actors", Value(std::move(actors))},
                    {"pagination", obj({{"cursor", page->cursor.empty() ? Value() : Value(page->cursor)}})}}));
    } else {
      listing.emplace(rt_.list_by_name(ns, *name));
    }
  } else {
    co_return http::error_response(invalid_input("Either `actor_ids` or `name` is required."));
  }
  auto found = co_await rt_.once_durable(std::move(*listing));
  if (!found.ok()) co_return http::error_response(found.error());
  Array actors;
  for (const auto& a : *found) actors.push_back(actor_json(a));
  co_return http::json_response(
      200, obj({{"actors", Value(std::move(actors))}, {"pagination", obj({{"cursor", Value()}})}}));
}

asio::awaitable<http::Response> ManagerApi::delete_actor(std::string_view raw_id) {
  auto id = http::percent_decode(raw_id).value_or(std::string(raw_id));
  // A coordinator's children end only on their coordinator's word.
  if (auto info = rt_.find_by_id(id)) {
    const ActorDefinition* def = rt_.registry().find(info->name);
    if (def && !def->creators().empty()) {
      std::string who;
      for (const auto& c : def->creators()) who += (who.empty() ? "" : ", ") + c;
      co_return http::error_response(make_error(
          "actor", "destroy_not_allowed",
          "`" + info->name + "` actors are destroyed only through their coordinator (" + who + ").",
          obj({{"name", info->name}, {"actor_id", id}})));
    }
  }
  auto st = co_await rt_.destroy(id);
  if (!st.ok()) co_return http::error_response(st.error());
  co_return http::json_response(200, Object{});
}

// Operator views (admin token; docs/operator-guide.md, "The anvil CLI"):
//   GET  /admin/actors?namespace=&name=&keyPrefix=&awake=true|false&cursor=&limit=
//   GET  /admin/actors/{id}                      the detail
//   GET  /admin/actors/{id}/state|schedules|workflow
//   GET  /admin/actors/{id}/kv?prefix=
//   POST /admin/actors/{id}/sql   {"sql": "SELECT ..."}
//   PUT  /admin/actors/{id}/state  the new state (JSON, rivetkit's JSON-compat tags)
//   GET  /admin/actors/{id}/connections            its open connections (live)
//   GET  /admin/actors/{id}/queue?limit=           its queued messages
//   POST /admin/actors/{id}/queue  {"name", "body"}  queue a message (any queue name)
//   DELETE /admin/actors/{id}/queue                purge its queue
//   DELETE /admin/actors/{id}/schedules/{sid}      cancel a schedule
//   POST /admin/actors/{id}/workflow/replay {"entryId"?}  replay its finished workflow
asio::awaitable<http::Response> ManagerApi::admin_actors(const http::Request& req, std::string_view raw_id,
                                                         std::string_view part, std::string_view sub) {
  const std::string& m = req.method;
  if (!raw_id.empty()) {
    auto id = http::percent_decode(raw_id).value_or(std::string(raw_id));
    if (!sub.empty() || (part == "connections" && m == "GET") || (part == "queue" && m != "GET"))
      co_return co_await admin_operate(req, id, part, sub);
    if (part == "state" && m == "PUT") {
      auto next = json::parse(req.body, /*revive=*/true);
      if (!next.ok()) co_return http::error_response(invalid_input("The body must be the new state as JSON."));
      Value state = std::move(*next);
      CallResult r = co_await rt_.admin_set_state(id, std::move(state));
      if (!r.output.ok()) co_return http::error_response(r.output.error());
      co_return http::json_response(200, obj({{"state", *r.output}}));
    }
    inspect::View view = inspect::View::kDetail;
    std::string arg;
    const bool get = m == "GET";
    if (part.empty() && get) {
      view = inspect::View::kDetail;
    } else if (part == "state" && get) {
      view = inspect::View::kState;
    } else if (part == "schedules" && get) {
      view = inspect::View::kSchedules;
    } else if (part == "workflow" && get) {
      view = inspect::View::kWorkflow;
    } else if (part == "kv" && get) {
      view = inspect::View::kKv;
      arg = http::query_value(http::parse_query(req.query), "prefix").value_or("");
    } else if (part == "queue" && get) {
      view = inspect::View::kQueue;
      arg = http::query_value(http::parse_query(req.query), "limit").value_or("");
    } else if (part == "sql" && m == "POST") {
      view = inspect::View::kSql;
      auto body = json::parse(req.body, /*revive=*/false);
      const Value* sql = body.ok() ? body->find("sql") : nullptr;
      if (!sql || !sql->is_string()) co_return http::error_response(invalid_input("The body must be {\"sql\": \"...\"}."));
      arg = sql->as_string();
    } else {
      co_return http::error_response(make_error("api", "not_found", "The requested resource was not found"));
    }
    auto detail = rt_.admin_actor(id, view, arg);
    if (!detail.ok()) co_return http::error_response(detail.error());
    auto v = co_await rt_.once_durable(std::move(*detail));
    if (!v.ok()) co_return http::error_response(v.error());
    co_return http::json_response(200, *v);
  }
  if (m != "GET") co_return http::error_response(make_error("api", "not_found", "The requested resource was not found"));
  auto q = http::parse_query(req.query);
  inspect::ActorFilter f;
  if (auto v = http::query_value(q, "namespace")) f.namespace_name = *v;
  if (auto v = http::query_value(q, "name")) f.name = *v;
  if (auto v = http::query_value(q, "keyPrefix")) f.key_prefix = *v;
  if (auto v = http::query_value(q, "cursor")) f.cursor = *v;
  if (auto v = http::query_value(q, "awake"); v && !v->empty()) {
    if (*v != "true" && *v != "false") co_return http::error_response(invalid_input("`awake` must be true or false."));
    f.awake = *v == "true";
  }
  if (auto v = http::query_value(q, "limit"); v && !v->empty()) {
    auto n = parse_limit(*v, 1000);
    if (!n) co_return http::error_response(invalid_input("`limit` must be a number from 1 to 1000."));
    f.limit = *n;
  }
  auto page = rt_.admin_actors(f);
  if (!page.ok()) co_return http::error_response(page.error());
  auto v = co_await rt_.once_durable(std::move(*page));
  if (!v.ok()) co_return http::error_response(v.error());
  co_return http::json_response(200, *v);
}

asio::awaitable<http::Response> ManagerApi::admin_operate(const http::Request& req, const std::string& id,
                                                          std::string_view part, std::string_view sub) {
  const std::string& m = req.method;
  AdminOp op;
  Value body = Object{};
  if (!req.body.empty()) {
    auto parsed = json::parse(req.body, /*revive=*/true);
    if (!parsed.ok() || !parsed->is_object()) co_return http::error_response(invalid_input("The body must be a JSON object."));
    body = std::move(*parsed);
  }
  if (part == "connections" && sub.empty() && m == "GET") {
    op.kind = AdminOp::Kind::kConnections;
  } else if (part == "queue" && sub.empty() && m == "DELETE") {
    op.kind = AdminOp::Kind::kQueuePurge;
  } else if (part == "queue" && sub.empty() && m == "POST") {
    const Value* name = body.find("name");
    if (!name || !name->is_string() || name->as_string().empty())
      co_return http::error_response(invalid_input("The body must be {\"name\": \"<queue>\", \"body\": ...}."));
    op.kind = AdminOp::Kind::kQueueSend;
    op.name = name->as_string();
    if (const Value* b = body.find("body")) op.value = *b;
  } else if (part == "schedules" && !sub.empty() && m == "DELETE") {
    op.kind = AdminOp::Kind::kCancelSchedule;
    op.name = http::percent_decode(sub).value_or(std::string(sub));
  } else if (part == "workflow" && sub == "replay" && m == "POST") {
    op.kind = AdminOp::Kind::kWorkflowReplay;
    if (const Value* e = body.find("entryId"); e && e->is_string()) op.name = e->as_string();
  } else {
    co_return http::error_response(make_error("api", "not_found", "The requested resource was not found"));
  }
  CallResult r = co_await rt_.admin_operate(id, std::move(op));
  if (!r.output.ok()) {
    const Error& e = r.output.error();
    co_return http::error_response(e, e.code == "workflow_in_flight" ? 409 : e.code == "workflow_entry_not_found" ? 404 : 0);
  }
  co_return http::json_response(200, *r.output);
}

asio::awaitable<http::Response> ManagerApi::kv_get(std::string_view raw_id, std::string_view raw_key) {
  auto id = http::percent_decode(raw_id).value_or(std::string(raw_id));
  auto key_text = http::percent_decode(raw_key).value_or(std::string(raw_key));
  auto key = json::base64_decode(key_text);
  if (!key.ok()) co_return http::error_response(invalid_input("The key must be base64."));
  auto not_found = make_error("actor", "kv_key_not_found", "The KV key does not exist for this actor.");
  auto info = rt_.find_by_id(id);
  if (!info) co_return http::error_response(make_error("actor", "not_found", "The actor does not exist or was destroyed."));
  std::string value;
  // Key [3] is where rivetkit keeps the actor's inspector token.
  if (*key == Bytes{3}) {
    auto token = rt_.inspector_token(id);
    if (!token || token->empty()) co_return http::error_response(not_found, 404);
    value = *token;
  } else {
    // Any other key: the actor's own KV entry with exactly these bytes.
    const std::string k(key->begin(), key->end());
    auto entries = rt_.admin_actor(id, inspect::View::kKv, k);
    if (!entries.ok()) co_return http::error_response(entries.error());
    auto v = co_await rt_.once_durable(std::move(*entries));
    if (!v.ok()) co_return http::error_response(v.error());
    const Value* hit = nullptr;
    for (const auto& e : v->as_array()) {
      const Value* ek = e.find("key");
      const bool same = ek->is_string() ? ek->as_string() == k
                                        : std::string(ek->as_bytes().begin(), ek->as_bytes().end()) == k;
      if (same) hit = e.find("value");
    }
    if (!hit) co_return http::error_response(not_found, 404);
    value = hit->is_string() ? hit->as_string() : std::string(hit->as_bytes().begin(), hit->as_bytes().end());
  }
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(value.data()), value.size());
  co_return http::json_response(200, obj({{"value", json::base64_encode(bytes)}, {"update_ts", info->create_ts}}));
}

}  // namespace anvil
