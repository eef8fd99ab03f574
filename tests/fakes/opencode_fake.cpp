#include "tests/fakes/opencode_fake.hpp"

#include <chrono>

#include "base/value/json.hpp"

namespace anvil::fakes {
namespace {

FakeHttpServer::Options server_options(uint16_t port) {
  FakeHttpServer::Options o;
  o.threads = 2;
  o.port = port;
  return o;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

FakeResponse json_response(int status, const Value& v) { return FakeResponse::json(status, json::dump(v)); }

FakeResponse not_found(const std::string& what) {
  return json_response(404, obj({{"name", "NotFoundError"}, {"data", obj({{"message", what}})}}));
}

}  // namespace

OpenCodeFake::OpenCodeFake(uint16_t port) : server_(server_options(port)) {
  server_.fallback([this](const RecordedRequest& req) { return handle(req); });
}

OpenCodeFake::~OpenCodeFake() { server_.stop(); }

std::string OpenCodeFake::url() const { return server_.url(""); }

int OpenCodeFake::sessions_created() const {
  std::lock_guard lk(mu_);
  return static_cast<int>(sessions_.size());
}

std::vector<std::string> OpenCodeFake::session_ids() const {
  std::lock_guard lk(mu_);
  return order_;
}

int OpenCodeFake::messages_for(const std::string& session) const {
  std::lock_guard lk(mu_);
  auto it = sessions_.find(session);
  return it == sessions_.end() ? 0 : static_cast<int>(it->second.prompts.size());
}

std::vector<std::string> OpenCodeFake::prompts(const std::string& session) const {
  std::lock_guard lk(mu_);
  auto it = sessions_.find(session);
  return it == sessions_.end() ? std::vector<std::string>{} : it->second.prompts;
}

int OpenCodeFake::event_streams_opened() const {
  std::lock_guard lk(mu_);
  return streams_;
}

void OpenCodeFake::reply_with(std::string text) {
  std::lock_guard lk(mu_);
  reply_ = std::move(text);
}

void OpenCodeFake::reply_delay(std::chrono::milliseconds d) {
  std::lock_guard lk(mu_);
  delay_ = d;
}

void OpenCodeFake::fail_next(int n, int status) {
  std::lock_guard lk(mu_);
  fail_left_ = n;
  fail_status_ = status;
}

void OpenCodeFake::hang_next(int n) {
  std::lock_guard lk(mu_);
  hang_left_ = n;
}

void OpenCodeFake::healthy(bool h) {
  std::lock_guard lk(mu_);
  healthy_ = h;
}

void OpenCodeFake::end_event_streams() {
  std::lock_guard lk(mu_);
  ++stream_epoch_;
}

void OpenCodeFake::publish(std::chrono::steady_clock::time_point due, Value event) {
  // Due times stay in publication order, so a stream never holds back an
  // event behind a later one.
  if (!bus_.empty() && due < bus_.back().due) due = bus_.back().due;
  bus_.push_back({due, json::dump(event)});
}

FakeResponse OpenCodeFake::handle(const RecordedRequest& req) {
  {
    std::lock_guard lk(mu_);
    if (hang_left_ > 0) {
      --hang_left_;
      return FakeResponse::hang();
    }
    if (fail_left_ > 0) {
      --fail_left_;
      return json_response(fail_status_, obj({{"name", "UnknownError"}, {"data", obj({{"message", "injected"}})}}));
    }
  }
  Value body = Object{};
  if (!req.body.empty()) {
    auto parsed = json::parse(req.body, false);
    if (!parsed.ok()) return json_response(400, obj({{"name", "BadRequest"}}));
    body = *parsed;
  }
  std::vector<std::string> seg;
  for (size_t pos = 1; pos <= req.path.size();) {
    auto end = req.path.find('/', pos);
    if (end == std::string::npos) end = req.path.size();
    if (end > pos) seg.push_back(req.path.substr(pos, end - pos));
    pos = end + 1;
  }
  if (req.method == "GET" && seg == std::vector<std::string>{"global", "health"}) {
    std::lock_guard lk(mu_);
    return json_response(healthy_ ? 200 : 503, obj({{"healthy", healthy_}, {"version", "0.0.0-anvil-fake"}}));
  }
  if (req.method == "GET" && seg == std::vector<std::string>{"event"}) {
    size_t cursor;
    uint64_t epoch;
    {
      std::lock_guard lk(mu_);
      cursor = bus_.size();
      epoch = stream_epoch_;
      ++streams_;
    }
    auto first = std::make_shared<bool>(true);
    return FakeResponse::live_events([this, cursor, epoch, first](std::string& out) mutable {
      if (*first) {
        *first = false;
        out += "data: " + json::dump(obj({{"type", "server.connected"}, {"properties", Object{}}})) + "\n\n";
      }
      std::lock_guard lk(mu_);
      if (stream_epoch_ != epoch) return false;
      const auto now = std::chrono::steady_clock::now();
      while (cursor < bus_.size() && bus_[cursor].due <= now) out += "data: " + bus_[cursor++].data + "\n\n";
      return true;
    });
  }
  if (!seg.empty() && seg[0] == "session") {
    if (seg.size() == 1 && req.method == "POST") {
      std::lock_guard lk(mu_);
      const std::string id = "ses_" + std::to_string(next_id_++);
      const int64_t t = now_ms();
      Value info = obj({{"id", id},
                        {"title", body.find("title") && body.find("title")->is_string() ? *body.find("title") : Value("New session")},
                        {"version", "0.0.0-anvil-fake"},
                        {"time", obj({{"created", t}, {"updated", t}})}});
      if (const Value* parent = body.find("parentID")) info["parentID"] = *parent;
      sessions_[id] = Session{info, {}, {}};
      order_.push_back(id);
      return json_response(200, info);
    }
    if (seg.size() == 1 && req.method == "GET") {
      std::lock_guard lk(mu_);
      Array out;
      for (const auto& id : order_) out.push_back(sessions_[id].info);
      return json_response(200, Value(std::move(out)));
    }
    const std::string id = seg.size() > 1 ? seg[1] : "";
    {
      std::lock_guard lk(mu_);
      if (!sessions_.count(id)) return not_found("Session not found: " + id);
    }
    if (seg.size() == 2 && req.method == "GET") {
      std::lock_guard lk(mu_);
      return json_response(200, sessions_[id].info);
    }
    if (seg.size() == 3 && seg[2] == "message" && req.method == "POST") return message(id, body);
    if (seg.size() == 3 && seg[2] == "message" && req.method == "GET") {
      std::lock_guard lk(mu_);
      Array out;
      const auto now = std::chrono::steady_clock::now();
      for (const auto& m : sessions_[id].messages)
        if (m.visible_at <= now) out.push_back(obj({{"info", m.info}, {"parts", m.parts}}));
      return json_response(200, Value(std::move(out)));
    }
    if (seg.size() == 3 && seg[2] == "abort" && req.method == "POST") return json_response(200, Value(true));
  }
  return not_found("no route " + req.method + " " + req.path);
}

FakeResponse OpenCodeFake::message(const std::string& id, const Value& body) {
  std::string prompt;
  if (const Value* parts = body.find("parts"); parts && parts->is_array())
    for (const auto& p : parts->as_array())
      if (const Value* t = p.find("text"); t && t->is_string()) prompt += t->as_string();
  std::lock_guard lk(mu_);
  Session& s = sessions_[id];
  s.prompts.push_back(prompt);
  const int64_t t = now_ms();
  const std::string user_id = "msg_" + std::to_string(next_id_++);
  const std::string asst_id = "msg_" + std::to_string(next_id_++);
  const std::string part_id = "prt_" + std::to_string(next_id_++);
  const std::string text = reply_.empty() ? "done: " + prompt : reply_;
  Value user = obj({{"id", user_id}, {"sessionID", id}, {"role", "user"}, {"time", obj({{"created", t}})}});
  Value user_parts = Array{obj({{"id", "prt_u" + user_id}, {"sessionID", id}, {"messageID", user_id}, {"type", "text"}, {"text", prompt}})};
  Value asst = obj({{"id", asst_id},
                    {"sessionID", id},
                    {"role", "assistant"},
                    {"parentID", user_id},
                    {"time", obj({{"created", t}, {"completed", t + delay_.count()}})}});
  Value part = obj({{"id", part_id}, {"sessionID", id}, {"messageID", asst_id}, {"type", "text"}, {"text", text}});
  const auto now = std::chrono::steady_clock::now();
  s.messages.push_back({user, user_parts, now});
  s.messages.push_back({asst, Array{part}, now + delay_});

  publish(now, obj({{"type", "message.updated"}, {"properties", obj({{"info", user}})}}));
  const std::string half = text.substr(0, text.size() / 2);
  Value partial = part;
  partial["text"] = half;
  publish(now + delay_ / 2, obj({{"type", "message.part.updated"}, {"properties", obj({{"part", partial}, {"delta", half}})}}));
  publish(now + delay_, obj({{"type", "message.part.updated"},
                             {"properties", obj({{"part", part}, {"delta", text.substr(half.size())}})}}));
  publish(now + delay_, obj({{"type", "message.updated"}, {"properties", obj({{"info", asst}})}}));
  publish(now + delay_, obj({{"type", "session.idle"}, {"properties", obj({{"sessionID", id}})}}));
  return json_response(200, obj({{"info", asst}, {"parts", Array{part}}})).after(delay_);
}

}  // namespace anvil::fakes
