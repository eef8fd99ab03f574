#include "gateway/inspector_routes.hpp"

#include <algorithm>

#include "base/value/json.hpp"
#include "runtime/inspect.hpp"

namespace anvil::gateway {
namespace {

// rivetkit's inspector errors: always with "metadata" (null when none).
http::Response inspector_error(const Error& e, int status = 0) {
  http::Response r = http::json_response(status ? status : http_status_for(e),
                                         obj({{"group", e.group},
                                              {"code", e.code},
                                              {"message", e.message},
                                              {"metadata", e.metadata ? *e.metadata : Value()}}));
  r.headers.emplace_back("x-rivet-error", e.qualified());
  return r;
}

// The plain {"error": "..."} 400 rivetkit answers for malformed database requests.
http::Response plain_error(const std::string& message) {
  return http::json_response(400, obj({{"error", message}}));
}

http::Response ok(const Value& body) { return http::json_response(200, body); }

// A JSON body (an empty one is {}).
Result<Value> json_body(const http::Request& req) {
  if (req.body.empty()) return Value(Object{});
  auto v = json::parse(req.body, /*revive=*/true);
  if (!v.ok() || !v->is_object())
    return make_error("actor", "invalid_request", "Invalid inspector JSON body");
  return v;
}

// Rivet's connection entry for one of the runtime's connections.
Value rivet_conn(const Value& c) {
  const Value* sub = c.find("subscriptions");
  const int64_t subs = sub && sub->is_array() ? static_cast<int64_t>(sub->as_array().size()) : 0;
  return obj({{"type", Value()},
              {"id", *c.find("id")},
              {"details", obj({{"type", Value()},
                               {"params", *c.find("params")},
                               {"stateEnabled", true},
                               {"state", *c.find("state")},
                               {"subscriptions", subs},
                               {"isHibernatable", false}})}});
}

// `"a""b"` quoting of an SQL identifier.
std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

// {columns, rows: [[...]]} => [{column: value}...]
Array row_objects(const Value& result) {
  Array out;
  const Array& cols = result.find("columns")->as_array();
  for (const auto& row : result.find("rows")->as_array()) {
    Object o;
    const Array& cells = row.as_array();
    for (size_t i = 0; i < cols.size() && i < cells.size(); ++i) o.emplace_back(cols[i].as_string(), cells[i]);
    out.emplace_back(std::move(o));
  }
  return out;
}

long long int_param(const std::vector<http::QueryParam>& q, const char* name, long long fallback) {
  auto v = http::query_value(q, name);
  if (!v || v->empty()) return fallback;
  char* end = nullptr;
  const long long n = std::strtoll(v->c_str(), &end, 10);
  return end == v->c_str() ? fallback : n;
}

}  // namespace

Error InspectorRoutes::unauthorized() {
  return make_error("inspector", "unauthorized", "Inspector request requires a valid bearer token");
}

bool InspectorRoutes::allowed(const http::Request& req, const std::string& token) const {
  auto b = bearer_token(req);
  return b && allowed(*b, token);
}

bool InspectorRoutes::allowed(std::string_view presented, const std::string& token) const {
  // Both compared whatever the first gives (constant time, no early exit).
  const bool actor_ok = !token.empty() && constant_time_equal(presented, token);
  const bool admin_ok = access_ && access_->is_admin_token(presented);
  return actor_ok || admin_ok;
}

asio::awaitable<Result<Value>> InspectorRoutes::state(const std::string& id) {
  AdminOp op;
  op.kind = AdminOp::Kind::kState;
  co_return co_await operate(id, std::move(op));
}

asio::awaitable<Result<Value>> InspectorRoutes::stored_state(const std::string& id) {
  const std::string none;
  co_return co_await view(id, inspect::View::kState, none);
}

asio::awaitable<Result<Value>> InspectorRoutes::queue(const std::string& id, long long limit) {
  const std::string limit_arg = std::to_string(limit > 0 ? limit : 100);
  auto q = co_await view(id, inspect::View::kQueue, limit_arg);
  if (!q.ok()) co_return q;
  // rivetkit lists the messages without their bodies.
  for (auto& msg : q->find("messages")->as_array()) {
    Object& o = msg.as_object();
    o.erase(std::remove_if(o.begin(), o.end(), [](const auto& kv) { return kv.first == "body"; }), o.end());
  }
  co_return q;
}

asio::awaitable<Result<Value>> InspectorRoutes::schedules(const std::string& id) {
  const std::string none;
  co_return co_await view(id, inspect::View::kSchedules, none);
}

asio::awaitable<Result<Value>> InspectorRoutes::table_rows(const std::string& id, const std::string& table,
                                                           long long limit, long long offset) {
  const std::string sql = "SELECT * FROM " + quote_ident(table) + " LIMIT " +
                          std::to_string(std::clamp<long long>(limit, 0, 500)) + " OFFSET " +
                          std::to_string(std::max<long long>(offset, 0));
  co_return co_await sql_rows(id, sql);
}

asio::awaitable<Result<Value>> InspectorRoutes::view(const std::string& id, inspect::View v, const std::string& arg) {
  auto pending = rt_.admin_actor(id, v, arg);
  if (!pending.ok()) co_return pending.error();
  co_return co_await rt_.once_durable(std::move(*pending));
}

asio::awaitable<Result<Value>> InspectorRoutes::operate(const std::string& id, AdminOp op) {
  CallResult r = co_await rt_.admin_operate(id, std::move(op));
  co_return std::move(r.output);
}

asio::awaitable<Result<Value>> InspectorRoutes::connections(const std::string& id) {
  AdminOp op;
  op.kind = AdminOp::Kind::kConnections;
  auto conns = co_await operate(id, std::move(op));
  if (!conns.ok()) co_return conns.error();
  co_return rivet_connections(*conns);
}

Value InspectorRoutes::rivet_connections(const Value& runtime_conns) {
  Array out;
  // An HTTP action's connection lives for that call only: not listed.
  for (const auto& c : runtime_conns.as_array())
    if (!c.find("ephemeral")->as_bool()) out.push_back(rivet_conn(c));
  return Value(std::move(out));
}

asio::awaitable<Result<Value>> InspectorRoutes::workflow(const std::string& id) {
  auto info = rt_.find_by_id(id);
  const ActorDefinition* def = info ? rt_.registry().find(info->name) : nullptr;
  const bool enabled = def && def->run_hook();
  if (!enabled) co_return obj({{"history", Value()}, {"workflowState", Value()}, {"isWorkflowEnabled", false}});
  const std::string none;
  auto h = co_await view(id, inspect::View::kRivetWorkflow, none);
  if (!h.ok()) co_return h.error();
  co_return obj({{"history", *h->find("history")},
                 {"workflowState", *h->find("workflowState")},
                 {"isWorkflowEnabled", true}});
}

asio::awaitable<Result<Value>> InspectorRoutes::sql_rows(const std::string& id, const std::string& sql) {
  auto r = co_await view(id, inspect::View::kSql, sql);
  if (!r.ok()) co_return r.error();
  co_return Value(row_objects(*r));
}

asio::awaitable<Result<Value>> InspectorRoutes::database_schema(const std::string& id) {
  const std::string list_sql =
      "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' "
      "ORDER BY name";
  auto tables = co_await sql_rows(id, list_sql);
  Array infos;
  if (!tables.ok()) {
    // No database yet (or none declared): no tables, as an empty one.
    if (tables.error().group != "db" || tables.error().code != "not_found") co_return tables.error();
    co_return obj({{"tables", Array{}}});
  }
  for (const auto& t : tables->as_array()) {
    const std::string name = t.find("name")->as_string();
    const std::string q = quote_ident(name);
    // Named, not temporaries, inside co_await (GCC 12).
    const std::string columns_sql = "PRAGMA table_info(" + q + ")";
    const std::string fks_sql = "PRAGMA foreign_key_list(" + q + ")";
    const std::string count_sql = "SELECT COUNT(*) AS count FROM " + q;
    auto columns = co_await sql_rows(id, columns_sql);
    auto fks = co_await sql_rows(id, fks_sql);
    auto count = co_await sql_rows(id, count_sql);
    if (!columns.ok()) co_return columns.error();
    if (!fks.ok()) co_return fks.error();
    if (!count.ok()) co_return count.error();
    const Array& c = count->as_array();
    infos.push_back(obj({{"table", obj({{"schema", "main"}, {"name", name}, {"type", *t.find("type")}})},
                         {"columns", *columns},
                         {"foreignKeys", *fks},
                         {"records", c.empty() ? Value(0) : *c[0].find("count")}}));
  }
  co_return obj({{"tables", Value(std::move(infos))}});
}

asio::awaitable<http::Response> InspectorRoutes::handle(const http::Request& req, const std::string& id,
                                                        std::string_view sub) {
  const std::string& m = req.method;
  auto token = rt_.inspector_token(id);
  if (!token) co_return inspector_error(make_error("actor", "not_found", "The actor does not exist or was destroyed."));
  if (!allowed(req, *token)) co_return inspector_error(unauthorized(), 401);
  auto info = rt_.find_by_id(id);
  const ActorDefinition* def = info ? rt_.registry().find(info->name) : nullptr;
  if (!def) co_return inspector_error(make_error("actor", "not_registered", "The actor's type is not hosted here."));

  if (sub == "/state" && m == "GET") {
    auto s = co_await state(id);
    if (!s.ok()) co_return inspector_error(s.error());
    co_return ok(obj({{"state", *s}, {"isStateEnabled", true}}));
  }
  if (sub == "/state" && m == "PATCH") {
    auto body = json_body(req);
    if (!body.ok()) co_return inspector_error(body.error(), 400);
    const Value* next = body->find("state");
    Value state = next ? *next : Value();
    CallResult r = co_await rt_.admin_set_state(id, std::move(state));
    if (!r.output.ok()) co_return inspector_error(r.output.error());
    co_return ok(obj({{"ok", true}}));
  }
  if (sub == "/connections" && m == "GET") {
    auto c = co_await connections(id);
    if (!c.ok()) co_return inspector_error(c.error());
    co_return ok(obj({{"connections", *c}}));
  }
  if (sub == "/rpcs" && m == "GET") {
    Array rpcs;
    for (const auto& n : def->action_names()) rpcs.emplace_back(n);
    co_return ok(obj({{"rpcs", Value(std::move(rpcs))}}));
  }
  if (sub == "/queue" && m == "GET") {
    const long long limit = int_param(http::parse_query(req.query), "limit", 100);
    auto q = co_await queue(id, limit);
    if (!q.ok()) co_return inspector_error(q.error());
    co_return ok(*q);
  }
  if (sub == "/queue" && m == "DELETE") {
    AdminOp op;
    op.kind = AdminOp::Kind::kQueuePurge;
    auto r = co_await operate(id, std::move(op));
    if (!r.ok()) co_return inspector_error(r.error());
    co_return ok(Object{});
  }
  if (sub == "/queue" && m == "POST") {
    auto body = json_body(req);
    if (!body.ok()) co_return inspector_error(body.error(), 400);
    const Value* name = body->find("name");
    if (!name || !name->is_string() || name->as_string().empty())
      co_return inspector_error(make_error("actor", "invalid_request", "Queue message name must not be empty"), 400);
    AdminOp op;
    op.kind = AdminOp::Kind::kQueueSend;
    op.name = name->as_string();
    const Value* msg = body->find("body");
    op.value = msg ? *msg : Value();
    auto r = co_await operate(id, std::move(op));
    if (!r.ok()) co_return inspector_error(r.error());
    co_return ok(*r);
  }
  if (sub == "/traces" && m == "GET") co_return ok(obj({{"otlp", Array{}}, {"clamped", false}}));
  if (sub == "/workflow-history" && m == "GET") {
    auto w = co_await workflow(id);
    if (!w.ok()) co_return inspector_error(w.error());
    co_return ok(*w);
  }
  if (sub == "/workflow/replay" && m == "POST") {
    auto body = json_body(req);
    if (!body.ok()) co_return inspector_error(body.error(), 400);
    AdminOp op;
    op.kind = AdminOp::Kind::kWorkflowReplay;
    if (const Value* entry = body->find("entryId"); entry && entry->is_string()) op.name = entry->as_string();
    auto r = co_await operate(id, std::move(op));
    if (!r.ok()) {
      const Error& e = r.error();
      const int status = e.code == "workflow_in_flight" ? 409 : e.code == "workflow_entry_not_found" ? 404 : 0;
      co_return inspector_error(e, status);
    }
    auto w = co_await workflow(id);
    if (!w.ok()) co_return inspector_error(w.error());
    co_return ok(*w);
  }
  if (sub == "/database/schema" && m == "GET") {
    auto schema = co_await database_schema(id);
    if (!schema.ok()) co_return inspector_error(schema.error());
    co_return ok(obj({{"schema", *schema}}));
  }
  if (sub == "/database/rows" && m == "GET") {
    auto q = http::parse_query(req.query);
    auto table = http::query_value(q, "table");
    if (!table || table->empty()) co_return http::json_response(400, obj({{"error", "Missing required table query parameter"}}));
    const std::string name(*table);
    const long long limit = int_param(q, "limit", 100), offset = int_param(q, "offset", 0);
    auto rows = co_await table_rows(id, name, limit, offset);
    if (!rows.ok()) co_return inspector_error(rows.error());
    co_return ok(obj({{"rows", *rows}}));
  }
  if (sub == "/database/execute" && m == "POST") {
    auto body = json_body(req);
    if (!body.ok()) co_return inspector_error(body.error(), 400);
    const Value* sql = body->find("sql");
    if (!sql || !sql->is_string() || sql->as_string().find_first_not_of(" \t\r\n") == std::string::npos)
      co_return plain_error("sql is required");
    const Value* args = body->find("args");
    const Value* props = body->find("properties");
    if (args && args->is_array() && props && props->is_object())
      co_return plain_error("use either args or properties, not both");
    AdminOp op;
    op.kind = AdminOp::Kind::kSqlExecute;
    op.name = sql->as_string();
    op.value = props && props->is_object() ? *props : args && args->is_array() ? *args : Value(Array{});
    auto r = co_await operate(id, std::move(op));
    if (!r.ok()) co_return inspector_error(r.error());
    co_return ok(*r);
  }
  if (sub == "/summary" && m == "GET") {
    auto s = co_await state(id);
    if (!s.ok()) co_return inspector_error(s.error());
    auto c = co_await connections(id);
    if (!c.ok()) co_return inspector_error(c.error());
    const std::string one = "1";
    auto q = co_await view(id, inspect::View::kQueue, one);
    if (!q.ok()) co_return inspector_error(q.error());
    auto w = co_await workflow(id);
    if (!w.ok()) co_return inspector_error(w.error());
    Array rpcs;
    for (const auto& n : def->action_names()) rpcs.emplace_back(n);
    co_return ok(obj({{"state", *s},
                      {"connections", *c},
                      {"rpcs", Value(std::move(rpcs))},
                      {"queueSize", *q->find("size")},
                      {"isStateEnabled", true},
                      {"isDatabaseEnabled", def->database_options() != nullptr},
                      {"isWorkflowEnabled", *w->find("isWorkflowEnabled")},
                      {"workflowState", *w->find("workflowState")},
                      {"workflowHistory", *w->find("history")}}));
  }
  if (m == "POST" && sub.substr(0, 8) == "/action/") {
    auto action = http::percent_decode(sub.substr(8));
    if (!action || !def->has_action(*action))
      co_return inspector_error(
          make_error("action", "action_not_found", "Action " + std::string(sub.substr(8)) + " not found"), 404);
    auto body = json_body(req);
    if (!body.ok()) co_return inspector_error(body.error(), 400);
    const Value* args = body->find("args");
    const Value* props = body->find("properties");
    if (args && props) co_return plain_error("use either args or properties, not both");
    Array call_args;
    if (props) {
      if (!props->is_object()) co_return plain_error("properties must be an object");
      call_args.push_back(*props);
    } else if (args && args->is_array()) {
      call_args = args->as_array();
    } else if (args && !args->is_null()) {
      call_args.push_back(*args);
    }
    CallResult r = co_await rt_.call_action(id, std::move(*action), std::move(call_args), Value());
    if (!r.output.ok()) co_return inspector_error(r.output.error());
    co_return ok(obj({{"output", *r.output}}));
  }
  co_return inspector_error(make_error("actor", "not_found", "Inspector route was not found"), 404);
}

}  // namespace anvil::gateway
