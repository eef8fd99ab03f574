#include "tests/fakes/services_fake.hpp"

#include <hiredis/hiredis.h>

#include <chrono>
#include <ctime>
#include <stdexcept>

#include "base/value/json.hpp"

namespace anvil::fakes {
namespace {

// One synchronous command on a fresh connection to redis://host:port[/db]
// (a fake's rate of writes needs nothing more). Throws on any failure: a test
// that asked for publishing must not pass without it.
void redis_command(const std::string& url, const std::vector<std::string>& argv) {
  std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
  int db = 0;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    if (slash + 1 < rest.size()) db = std::stoi(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
  }
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  const auto colon = rest.rfind(':');
  const std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  const int port = colon == std::string::npos ? 6379 : std::stoi(rest.substr(colon + 1));
  redisContext* c = redisConnect(host.c_str(), port);
  if (!c || c->err) {
    const std::string why = c ? c->errstr : "no memory";
    if (c) redisFree(c);
    throw std::runtime_error("ServicesFake: cannot reach Redis " + url + ": " + why);
  }
  auto run = [&](const std::vector<std::string>& args) {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), ptrs.data(), lens.data()));
    const bool ok = reply && reply->type != REDIS_REPLY_ERROR;
    const std::string why = !reply ? c->errstr : (reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    if (reply) freeReplyObject(reply);
    if (!ok) {
      redisFree(c);
      throw std::runtime_error("ServicesFake: Redis command " + args.front() + " failed: " + why);
    }
  };
  if (db != 0) run({"SELECT", std::to_string(db)});
  run(argv);
  redisFree(c);
}

std::string field(const Value& v, std::string_view k) {
  const Value* f = v.is_object() ? v.find(k) : nullptr;
  return f && f->is_string() ? f->as_string() : "";
}

}  // namespace

ServicesFake::ServicesFake() { listen(0); }

ServicesFake::~ServicesFake() {
  if (server_) server_->stop();
}

void ServicesFake::listen(uint16_t port) {
  FakeHttpServer::Options o;
  o.port = port;
  server_ = std::make_unique<FakeHttpServer>(o);
  port_ = server_->port();
  server_->fallback([this](const RecordedRequest& req) { return handle(req); });
}

std::string ServicesFake::url(const std::string& service) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/" + service;
}

void ServicesFake::down() {
  std::lock_guard lk(mu_);
  down_ = true;
}

void ServicesFake::refuse() {
  if (server_) server_->stop();
  server_.reset();
}

void ServicesFake::up() {
  {
    std::lock_guard lk(mu_);
    down_ = false;
  }
  if (!server_) listen(port_);
}

void ServicesFake::fail_next(int n, int status) {
  std::lock_guard lk(mu_);
  fail_left_ = n;
  fail_status_ = status;
}

int ServicesFake::calls(const std::string& service, const std::string& op) const {
  std::lock_guard lk(mu_);
  auto it = calls_.find(service + "/" + op);
  return it == calls_.end() ? 0 : it->second;
}

int ServicesFake::effects(const std::string& service, const std::string& op) const {
  std::lock_guard lk(mu_);
  auto it = effects_.find(service + "/" + op);
  return it == effects_.end() ? 0 : it->second;
}

std::vector<std::string> ServicesFake::keys() const {
  std::lock_guard lk(mu_);
  return keys_;
}

Value ServicesFake::last_body(const std::string& service, const std::string& op) const {
  std::lock_guard lk(mu_);
  auto it = last_body_.find(service + "/" + op);
  return it == last_body_.end() ? Value() : it->second;
}

FakeResponse ServicesFake::handle(const RecordedRequest& req) {
  // "/<service>/<op>"
  const auto slash = req.path.find('/', 1);
  if (slash == std::string::npos) return FakeResponse::json(404, R"({"error":"not_found"})");
  const std::string service = req.path.substr(1, slash - 1);
  const std::string op = req.path.substr(slash + 1);
  std::lock_guard lk(mu_);
  if (down_) return FakeResponse::retry_after(503, "1");
  if (fail_left_ > 0) {
    --fail_left_;
    return FakeResponse::json(fail_status_, R"({"error":"injected"})");
  }
  if (req.method == "GET" && op == "health") return FakeResponse::json(200, R"({"ok":true})");
  if (req.method != "POST" || (op != "configure" && op != "sessions" && op != "review"))
    return FakeResponse::json(404, R"({"error":"not_found"})");
  const std::string what = service + "/" + op;
  ++calls_[what];
  auto key = req.header("idempotency-key");
  if (!key || key->empty()) return FakeResponse::json(400, R"({"error":"idempotency_key_required"})");
  keys_.push_back(*key);
  auto parsed = json::parse(req.body, false);
  Value body = parsed.ok() ? *parsed : Value();
  last_body_[what] = body;
  const std::string slot = what + "/" + *key;
  if (auto it = first_response_.find(slot); it != first_response_.end())
    return FakeResponse::json(op == "sessions" ? 201 : 200, it->second);
  ++effects_[what];
  const std::string n = std::to_string(next_id_++);
  Value out;
  if (op == "configure") {
    const Value* cfg = body.is_object() ? body.find("config") : nullptr;
    out = obj({{"configured", true}, {"configId", service + "-cfg-" + n}, {"config", cfg ? *cfg : Value()}});
  } else if (op == "sessions") {
    out = obj({{"sessionId", service + "-ses-" + n}, {"url", url(service) + "/s/" + n}});
  } else {
    out = obj({{"reviewId", service + "-rev-" + n}, {"score", 80}, {"feedback", "Good structure; add numbers."}});
  }
  first_response_[slot] = json::dump(out);
  publish(service, op, body, out, n);
  return FakeResponse::json(op == "sessions" ? 201 : 200, first_response_[slot]);
}

}  // namespace anvil::fakes

namespace anvil::fakes {

void ServicesFake::publish_events(std::string redis_url, std::string stream) {
  std::lock_guard lk(mu_);
  events_url_ = std::move(redis_url);
  events_stream_ = std::move(stream);
}

void ServicesFake::legacy_keys(std::string redis_url, std::string key_prefix) {
  std::lock_guard lk(mu_);
  legacy_url_ = std::move(redis_url);
  legacy_prefix_ = std::move(key_prefix);
}

void ServicesFake::hold_responses(bool hold) {
  std::lock_guard lk(mu_);
  hold_ = hold;
}

void ServicesFake::release_responses() {
  std::lock_guard lk(mu_);
  for (const auto& [id, response] : held_) redis_command(legacy_url_, {"SET", legacy_prefix_ + "responses:" + id, response});
  held_.clear();
}

void ServicesFake::forget_tasks() {
  std::lock_guard lk(mu_);
  for (const auto& id : task_ids_) redis_command(legacy_url_, {"DEL", legacy_prefix_ + "tasks:" + id});
}

std::vector<std::string> ServicesFake::task_ids() const {
  std::lock_guard lk(mu_);
  return task_ids_;
}

void ServicesFake::publish(const std::string& service, const std::string& op, const Value& body, const Value& out,
                           const std::string& n) {
  const std::string user = field(body, "userId"), mission = field(body, "missionInstanceId"),
                    request = field(body, "requestId");
  if (!events_url_.empty() && !user.empty()) {
    Value ev = obj({{"id", service + "-evt-" + n},
                    {"type", service + "." + op + ".completed"},
                    {"userId", user},
                    {"occurredAt", utc_now_iso()},
                    {"serviceId", service},
                    {"operation", op},
                    {"payload", out}});
    if (!mission.empty()) ev["missionInstanceId"] = mission;
    if (!request.empty()) ev["requestId"] = request;
    redis_command(events_url_, {"XADD", events_stream_, "*", "event", json::dump(ev)});
  }
  if (!legacy_url_.empty() && !user.empty()) {
    const std::string id = service + "-task-" + n;
    Value ctx = obj({{"userId", user}, {"action", op}, {"service", service}});
    if (!mission.empty()) ctx["missionInstanceId"] = mission;
    if (!request.empty()) ctx["requestId"] = request;
    redis_command(legacy_url_, {"SET", legacy_prefix_ + "tasks:" + id, json::dump(ctx)});
    task_ids_.push_back(id);
    const std::string response = json::dump(obj({{"status", "completed"}, {"result", out}}));
    if (hold_)
      held_.emplace_back(id, response);
    else
      redis_command(legacy_url_, {"SET", legacy_prefix_ + "responses:" + id, response});
  }
}

}  // namespace anvil::fakes
