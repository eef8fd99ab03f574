#include "tests/fakes/services_fake.hpp"

#include "base/value/json.hpp"

namespace anvil::fakes {

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
  return FakeResponse::json(op == "sessions" ? 201 : 200, first_response_[slot]);
}

}  // namespace anvil::fakes
