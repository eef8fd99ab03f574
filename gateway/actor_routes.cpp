#include "gateway/actor_routes.hpp"

#include "base/value/json.hpp"
#include "engine-api/manager_api.hpp"

namespace anvil::gateway {
namespace {

Error guard_error(std::string code, std::string message) {
  return make_error("guard", std::move(code), std::move(message));
}

Error actor_not_found() {
  return make_error("actor", "not_found", "The actor does not exist or was destroyed.");
}

bool starts_with_segment(std::string_view path, std::string_view seg) {
  if (path.substr(0, seg.size()) != seg) return false;
  return path.size() == seg.size() || path[seg.size()] == '/' || path[seg.size()] == '?';
}

// Header values must not carry control characters; keys may (they are user data).
std::string header_safe(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return http::percent_encode(s);
  return s;
}

void add_actor_headers(http::Response& r, const std::optional<ActorInfo>& info) {
  if (!info) return;
  r.headers.emplace_back("x-rivet-actor", info->actor_id);
  r.headers.emplace_back("x-rivet-actor-generation", std::to_string(info->generation));
  r.headers.emplace_back("x-rivet-actor-key", header_safe(info->key));
}

}  // namespace

Error incoming_too_long(size_t limit) {
  return make_error("message", "incoming_too_long",
                    "Incoming message too long. Exceeded limit of " + std::to_string(limit) + " bytes.");
}

Error outgoing_too_long(size_t limit) {
  return make_error("message", "outgoing_too_long",
                    "Outgoing message too long. Exceeded limit of " + std::to_string(limit) + " bytes.");
}

bool ActorRoutes::matches(const http::Request& req, std::string_view path) const {
  if (starts_with_segment(path, "/gateway")) return true;
  auto target = req.header("x-rivet-target");
  if (target && *target == "actor" && req.header("x-rivet-actor"))
    return starts_with_segment(path, "/request") || starts_with_segment(path, "/connect") ||
           starts_with_segment(path, "/websocket");
  return false;
}

asio::awaitable<Result<ActorTarget>> ActorRoutes::resolve_target(const http::Request& req, std::string_view path,
                                                                 bool defer_create) {
  ActorTarget t;
  if (!starts_with_segment(path, "/gateway")) {
    // Header routed: the whole path is the actor path.
    t.actor_id = std::string(*req.header("x-rivet-actor"));
    t.actor_path = std::string(path);
    t.actor_query = req.query;
    if (auto tok = req.header("x-rivet-token")) t.token = std::string(*tok);
    if (!rt_.exists(t.actor_id)) co_return actor_not_found();
    co_return t;
  }

  auto gp = split_gateway_path(path);
  if (!gp.ok()) co_return gp.error();
  std::string_view seg = gp->segment;
  t.actor_path = std::move(gp->actor_path);

  auto qa = parse_query_address(req.query);
  if (qa) {
    if (!qa->ok()) co_return qa->error();
    if (seg.find('@') != seg.npos)
      co_return guard_error("query_path_token_syntax", "A query-routed actor name cannot carry `@token`.");
    auto name = http::percent_decode(seg);
    if (!name) co_return make_error("actor", "invalid_request", "Malformed actor name in path.");
    QueryAddress& a = qa->value();
    t.actor_query = a.actor_query;
    t.token = a.token;
    if (a.method == "get") {
      if (!rt_.registry().find(*name))
        co_return make_error("actor", "not_registered", "Actor type `" + *name + "` is not registered on this node.");
      auto info = rt_.find_by_key(a.namespace_name, *name, a.key);
      if (!info) co_return actor_not_found();
      t.actor_id = info->actor_id;
      co_return t;
    }
    CreateRequest cr;
    cr.namespace_name = a.namespace_name;
    cr.name = *name;
    cr.key = a.key;
    cr.input = a.input;
    cr.runner_name_selector = a.runner;
    if (a.crash_policy) cr.crash_policy = *a.crash_policy;
    if (a.region) cr.datacenter = *a.region;
    auto r = rt_.get_or_create(cr, defer_create);
    if (!r.ok()) co_return r.error();
    // No wait for the create commit here: whatever this request does next
    // replies only after a later commit of the same actor, which covers it.
    t.actor_id = r->info.actor_id;
    t.created_deferred = defer_create && r->created;
    co_return t;
  }

  auto direct = parse_direct_segment(seg);
  if (!direct.ok()) co_return direct.error();
  t.actor_id = std::move(direct->actor_id);
  t.token = std::move(direct->token);
  t.actor_query = req.query;
  if (!rt_.exists(t.actor_id)) co_return actor_not_found();
  co_return t;
}

asio::awaitable<http::Response> ActorRoutes::handle(const http::Request& req, std::string_view path) {
  // A getOrCreate that creates leaves the record to the actor's first turn
  // (one fsync on the cold path); a request that ends without a turn (bad
  // input, say) commits it here, before its reply.
  auto target = co_await resolve_target(req, path, /*defer_create=*/true);
  if (!target.ok()) co_return http::error_response(target.error());
  http::Response res = co_await dispatch(req, *target);
  if (target->created_deferred) {
    if (auto st = co_await rt_.durable(rt_.flush_create(target->actor_id)); !st.ok())
      co_return http::error_response(st.error());
  }
  co_return res;
}

asio::awaitable<http::Response> ActorRoutes::dispatch(const http::Request& req, const ActorTarget& t) {
  auto segs = http::split_path(t.actor_path);
  if (segs.size() == 2 && segs[0] == "action") {
    if (req.method != "POST")
      co_return http::error_response(make_error("actor", "method_not_allowed", "Actions are called with POST."));
    auto name = http::percent_decode(segs[1]);
    if (!name) co_return http::error_response(make_error("actor", "invalid_request", "Malformed action name."));
    co_return co_await action(req, t, std::move(*name));
  }
  if (segs.size() == 2 && segs[0] == "queue") {
    if (req.method != "POST")
      co_return http::error_response(make_error("actor", "method_not_allowed", "Queue messages are sent with POST."));
    auto name = http::percent_decode(segs[1]);
    if (!name) co_return http::error_response(make_error("actor", "invalid_request", "Malformed queue name."));
    co_return co_await queue_send(req, t, std::move(*name));
  }
  if (segs.size() == 1 && segs[0] == "metadata" && req.method == "GET") {
    // What Rivet's dashboard reads before it opens the inspector socket:
    // a rivetkit version of 2.3.4 or later selects protocol v6.
    co_return http::json_response(200, obj({{"runtime", "anvil"}, {"version", kRivetkitVersion}, {"type", "local"}}));
  }
  if (!segs.empty() && segs[0] == "inspector") {
    std::string_view sub = t.actor_path;
    sub.remove_prefix(std::string_view("/inspector").size());
    http::Response res = co_await inspector_.handle(req, t.actor_id, sub);
    // As on Rivet: the answer names the actor (when it exists), except to a
    // caller without a valid token (its key is not theirs to learn).
    if (res.status != 401) add_actor_headers(res, rt_.find_by_id(t.actor_id));
    co_return res;
  }
  if (!segs.empty() && segs[0] == "request") co_return co_await raw_request(req, t);
  if (!segs.empty() && (segs[0] == "connect" || segs[0] == "websocket")) {
    co_return http::error_response(
        make_error("actor", "invalid_request", "`/" + std::string(segs[0]) + "` requires a WebSocket upgrade."), 426);
  }
  co_return http::error_response(make_error("api", "not_found", "The requested resource was not found"));
}

namespace {

// The request's x-rivet-encoding (json when absent).
Result<wire::Encoding> request_encoding(const http::Request& req) {
  auto h = req.header("x-rivet-encoding");
  if (!h) return wire::Encoding::Json;
  auto enc = wire::parse_encoding(*h);
  if (!enc) return make_error("actor", "invalid_request", "Unsupported x-rivet-encoding `" + std::string(*h) + "`.");
  return *enc;
}

// An actor-level error in the request's encoding, with the actor specifier.
http::Response encoded_error(wire::Encoding enc, const Error& e, const std::optional<ActorInfo>& info) {
  http::Response r;
  r.status = http_status_for(e);
  r.headers.emplace_back("content-type", std::string(wire::content_type(enc)));
  std::optional<wire::ActorSpecifier> spec;
  if (info) spec = wire::ActorSpecifier{info->actor_id, info->generation, info->key};
  auto bytes = wire::encode_http_error(enc, e, spec);
  r.body.assign(bytes.begin(), bytes.end());
  r.headers.emplace_back("x-rivet-error", e.qualified());
  return r;
}

std::span<const uint8_t> body_bytes(const http::Request& req) {
  return {reinterpret_cast<const uint8_t*>(req.body.data()), req.body.size()};
}

// The connection params a client sent (x-rivet-conn-params, JSON), or null.
Result<Value> conn_params_of(const http::Request& req) {
  auto p = req.header("x-rivet-conn-params");
  if (!p) return Value();
  auto v = json::parse(*p);
  if (!v.ok()) return make_error("actor", "invalid_request", "x-rivet-conn-params is not valid JSON.");
  return v;
}

// What the actor's client guard (on_before_connect_async) sees of a request.
ClientRequest client_request(const http::Request& req, std::string kind, std::string name, Value params) {
  ClientRequest c;
  c.kind = std::move(kind);
  c.name = std::move(name);
  c.params = std::move(params);
  c.headers = req.headers;
  return c;
}

}  // namespace

asio::awaitable<http::Response> ActorRoutes::queue_send(const http::Request& req, const ActorTarget& t,
                                                        std::string queue_name) {
  auto enc = request_encoding(req);
  if (!enc.ok()) co_return http::error_response(enc.error());
  if (req.body.size() > limits_.max_incoming)
    co_return encoded_error(*enc, incoming_too_long(limits_.max_incoming), std::nullopt);
  auto msg = wire::decode_queue_send(*enc, body_bytes(req));
  if (!msg.ok()) co_return encoded_error(*enc, msg.error(), std::nullopt);
  auto params = conn_params_of(req);
  if (!params.ok()) co_return encoded_error(*enc, params.error(), std::nullopt);
  ClientRequest creq = client_request(req, "queue", queue_name, std::move(*params));
  CallResult guarded = co_await rt_.guard_client(t.actor_id, std::move(creq));
  if (!guarded.output.ok()) co_return encoded_error(*enc, guarded.output.error(), rt_.find_by_id(t.actor_id));
  // The path names the queue; a body `name` must agree with it.
  if (msg->name && *msg->name != queue_name)
    co_return encoded_error(*enc, make_error("queue", "name_mismatch", "Queue name in body differs from the path."),
                            std::nullopt);
  constexpr uint64_t kDefaultWaitMs = 60'000;
  auto out = co_await rt_.queue_send(t.actor_id, queue_name, std::move(msg->body), msg->wait,
                                     msg->timeout_ms.value_or(kDefaultWaitMs));
  if (!out.ok()) co_return encoded_error(*enc, out.error(), rt_.find_by_id(t.actor_id));
  http::Response r;
  r.headers.emplace_back("content-type", std::string(wire::content_type(*enc)));
  add_actor_headers(r, rt_.find_by_id(t.actor_id));
  auto bytes = wire::encode_queue_send_response(*enc, wire::QueueSendResponse{out->status, out->response});
  if (bytes.size() > limits_.max_outgoing)
    co_return encoded_error(*enc, outgoing_too_long(limits_.max_outgoing), rt_.find_by_id(t.actor_id));
  r.body.assign(bytes.begin(), bytes.end());
  co_return r;
}

asio::awaitable<http::Response> ActorRoutes::raw_request(const http::Request& req, const ActorTarget& t) {
  RawRequest raw;
  raw.method = req.method;
  std::string_view p = t.actor_path;
  p.remove_prefix(std::string_view("/request").size());
  raw.path = p.empty() ? "/" : std::string(p);
  raw.query = t.actor_query.empty() ? "" : "?" + t.actor_query;
  for (const auto& [k, v] : req.headers) {
    // Routing and transport headers are the gateway's, not the actor's.
    if (k == "x-rivet-target" || k == "x-rivet-actor" || k == "x-rivet-token" || k == "transfer-encoding" ||
        k == "connection")
      continue;
    raw.headers.emplace_back(k, v);
  }
  raw.body = req.body;
  auto params = conn_params_of(req);
  if (!params.ok()) co_return http::error_response(params.error());
  ClientRequest creq = client_request(req, "request", "", std::move(*params));
  CallResult guarded = co_await rt_.guard_client(t.actor_id, std::move(creq));
  if (!guarded.output.ok()) co_return http::error_response(guarded.output.error());
  auto res = co_await rt_.raw_request(t.actor_id, std::move(raw));
  if (!res.ok()) {
    int status = res.error().code == "request_handler_not_found" ? 404 : 0;
    co_return http::error_response(res.error(), status);
  }
  http::Response r;
  r.status = res->status;
  for (auto& [k, v] : res->headers) {
    std::string name = k;
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "content-length" || name == "transfer-encoding" || name == "connection") continue;
    r.headers.emplace_back(std::move(name), v);
  }
  r.body = std::move(res->body);
  co_return r;
}

asio::awaitable<http::Response> ActorRoutes::action(const http::Request& req, const ActorTarget& t,
                                                    std::string action_name) {
  auto enc = request_encoding(req);
  if (!enc.ok()) co_return http::error_response(enc.error());
  auto reply_error = [&](const Error& e, const std::optional<ActorInfo>& info) {
    return encoded_error(*enc, e, info);
  };

  if (req.body.size() > limits_.max_incoming)
    co_return reply_error(incoming_too_long(limits_.max_incoming), std::nullopt);

  auto parsed_params = conn_params_of(req);
  if (!parsed_params.ok()) co_return reply_error(parsed_params.error(), std::nullopt);
  Value params = std::move(*parsed_params);
  auto args = wire::decode_action_request(*enc, body_bytes(req));
  if (!args.ok()) co_return reply_error(args.error(), std::nullopt);

  ClientRequest creq = client_request(req, "action", action_name, params);
  CallResult guarded = co_await rt_.guard_client(t.actor_id, std::move(creq));
  if (!guarded.output.ok()) {
    auto info = rt_.find_by_id(t.actor_id);
    http::Response err = reply_error(guarded.output.error(), info);
    add_actor_headers(err, info);
    co_return err;
  }

  std::string traceparent(req.header("traceparent").value_or(""));
  std::string ray_id = req.ray_id;
  CallResult res = co_await rt_.call_action(t.actor_id, std::move(action_name), std::move(*args), std::move(params),
                                            std::move(traceparent), std::move(ray_id));
  http::Response r;
  add_actor_headers(r, res.actor);
  if (!res.output.ok()) {
    auto err = reply_error(res.output.error(), res.actor);
    for (auto& h : r.headers) err.headers.push_back(h);
    co_return err;
  }
  auto bytes = wire::encode_action_response(*enc, *res.output);
  if (bytes.size() > limits_.max_outgoing) {
    auto err = reply_error(outgoing_too_long(limits_.max_outgoing), res.actor);
    for (auto& h : r.headers) err.headers.push_back(h);
    co_return err;
  }
  r.status = 200;
  r.headers.emplace_back("content-type", std::string(wire::content_type(*enc)));
  r.body.assign(bytes.begin(), bytes.end());
  co_return r;
}

}  // namespace anvil::gateway
