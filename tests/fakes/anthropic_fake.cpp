#include "tests/fakes/anthropic_fake.hpp"

#include "base/value/json.hpp"

namespace anvil::fakes {
namespace {

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string str_field(const Value& v, std::string_view key) {
  const Value* f = v.find(key);
  return f && f->is_string() ? f->as_string() : std::string();
}

FakeResponse api_error(int status, std::string type, std::string message) {
  Value body = obj({{"type", "error"}, {"error", obj({{"type", std::move(type)}, {"message", std::move(message)}})}});
  return FakeResponse::json(status, json::dump(body));
}

std::string sse(std::string_view event, const Value& data) {
  return "event: " + std::string(event) + "\ndata: " + json::dump(data) + "\n\n";
}

}  // namespace

AnthropicFake::AnthropicFake() : AnthropicFake(Options{}) {}

AnthropicFake::AnthropicFake(Options options)
    : options_(std::move(options)), server_(FakeHttpServer::Options{options_.threads, std::nullopt, options_.record}) {
  server_.route("POST", "/v1/messages", [this](const RecordedRequest& req) { return answer(req); });
  // For tests in other languages (anvil-fakes): how many requests came.
  server_.route("GET", "/_fake/stats", [this](const RecordedRequest&) {
    return FakeResponse::json(200, json::dump(obj({{"requests", static_cast<int64_t>(request_count())}})));
  });
}

void AnthropicFake::rule(std::string match, std::vector<Block> content, std::string stop_reason) {
  std::lock_guard lock(mu_);
  rules_.push_back(Rule{std::move(match), Reply{std::move(content), std::move(stop_reason)}});
}

void AnthropicFake::rules_from_json(const Value& rules) {
  if (!rules.is_array()) return;
  for (const Value& r : rules.as_array()) {
    std::vector<Block> content;
    const Value& reply = r.find("reply") ? *r.find("reply") : Value();
    if (const Value* c = reply.find("content"); c && c->is_array())
      for (const Value& b : c->as_array()) {
        if (str_field(b, "type") == "tool_use")
          content.push_back(Block::tool(str_field(b, "name"), b.find("input") ? *b.find("input") : Value(Object{})));
        else
          content.push_back(Block::text_block(str_field(b, "text")));
      }
    rule(str_field(r, "match"), std::move(content), str_field(reply, "stop_reason"));
  }
}

void AnthropicFake::clear_rules() {
  std::lock_guard lock(mu_);
  rules_.clear();
}

void AnthropicFake::fail_next(int n, int status) {
  std::lock_guard lock(mu_);
  fail_n_ = n;
  fail_status_ = status;
}

void AnthropicFake::drop_stream_next(int n) {
  std::lock_guard lock(mu_);
  drop_n_ = n;
}

void AnthropicFake::latency(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  latency_ = d;
}

std::vector<Value> AnthropicFake::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

size_t AnthropicFake::request_count() const {
  std::lock_guard lock(mu_);
  return count_;
}

// The last turn of the conversation: a user text, or tool results (then the
// name of the tool the first result answers, found in the assistant turn
// before it).
AnthropicFake::Reply AnthropicFake::pick(const Value& request, std::string& last_text,
                                         std::string& first_result) const {
  std::string match_key;
  const Value* messages = request.find("messages");
  if (messages && messages->is_array() && !messages->as_array().empty()) {
    const Array& msgs = messages->as_array();
    const Value& last = msgs.back();
    const Value* content = last.find("content");
    if (content && content->is_string()) {
      last_text = content->as_string();
      match_key = last_text;
    } else if (content && content->is_array()) {
      for (const Value& b : content->as_array()) {
        const std::string type = str_field(b, "type");
        if (type == "text") last_text = str_field(b, "text");  // the latest text of the turn
        if (type == "tool_result" && match_key.empty()) {
          const std::string id = str_field(b, "tool_use_id");
          const Value* rc = b.find("content");
          if (rc && rc->is_string()) first_result = rc->as_string();
          else if (rc && rc->is_array() && !rc->as_array().empty()) first_result = str_field(rc->as_array()[0], "text");
          std::string tool;
          if (msgs.size() >= 2)
            if (const Value* prev = msgs[msgs.size() - 2].find("content"); prev && prev->is_array())
              for (const Value& pb : prev->as_array())
                if (str_field(pb, "type") == "tool_use" && str_field(pb, "id") == id) tool = str_field(pb, "name");
          match_key = "tool_result:" + tool;
        }
      }
      if (match_key.empty()) match_key = last_text;
    }
  }
  for (const Rule& r : rules_)
    if (match_key.find(r.match) != std::string::npos) return r.reply;
  return Reply{{Block::text_block("ok: " + last_text)}, ""};
}

FakeResponse AnthropicFake::answer(const RecordedRequest& req) {
  auto parsed = json::parse(req.body, false);
  std::unique_lock lock(mu_);
  if (!options_.api_key.empty() && req.header("x-api-key").value_or("") != options_.api_key)
    return api_error(401, "authentication_error", "invalid x-api-key");
  if (!parsed.ok() || !parsed->is_object())
    return api_error(400, "invalid_request_error", "body is not a JSON object");
  const Value request = *parsed;
  ++count_;
  if (options_.record) requests_.push_back(request);
  const auto latency = latency_;
  if (fail_n_ > 0) {
    --fail_n_;
    const int status = fail_status_;
    lock.unlock();
    if (status == 429)
      return std::move(api_error(429, "rate_limit_error", "rate limited")).with_header("retry-after", "1").after(latency);
    if (status == 529) return std::move(api_error(529, "overloaded_error", "Overloaded")).after(latency);
    return std::move(api_error(status, "api_error", "Internal server error")).after(latency);
  }
  std::string last_text, first_result;
  Reply reply = pick(request, last_text, first_result);
  const std::string msg_id = "msg_fake_" + std::to_string(next_id_++);
  Array content;
  bool has_tool = false;
  for (const Block& b : reply.content) {
    if (b.type == "tool_use") {
      has_tool = true;
      content.push_back(obj({{"type", "tool_use"},
                             {"id", "toolu_fake_" + std::to_string(next_id_++)},
                             {"name", b.name},
                             {"input", b.input.is_object() ? b.input : Value(Object{})}}));
    } else {
      std::string text = replace_all(replace_all(b.text, "{{text}}", last_text), "{{result}}", first_result);
      content.push_back(obj({{"type", "text"}, {"text", std::move(text)}}));
    }
  }
  const std::string stop = !reply.stop_reason.empty() ? reply.stop_reason : has_tool ? "tool_use" : "end_turn";
  const std::string model = str_field(request, "model");
  const bool drop = drop_n_ > 0 && (request.find("stream") && *request.find("stream") == Value(true));
  if (drop) --drop_n_;
  lock.unlock();

  const Value* stream = request.find("stream");
  if (!stream || !(*stream == Value(true))) {
    Value body = obj({{"id", msg_id},
                      {"type", "message"},
                      {"role", "assistant"},
                      {"model", model},
                      {"content", content},
                      {"stop_reason", stop},
                      {"stop_sequence", nullptr},
                      {"usage", obj({{"input_tokens", 10}, {"output_tokens", 10}})}});
    return FakeResponse::json(200, json::dump(body)).after(latency);
  }

  std::vector<SseChunk> chunks;
  auto add = [&](std::string_view event, const Value& data) { chunks.push_back({std::chrono::milliseconds(0), sse(event, data)}); };
  add("message_start", obj({{"type", "message_start"},
                            {"message", obj({{"id", msg_id},
                                             {"type", "message"},
                                             {"role", "assistant"},
                                             {"model", model},
                                             {"content", Array{}},
                                             {"stop_reason", nullptr},
                                             {"stop_sequence", nullptr},
                                             {"usage", obj({{"input_tokens", 10}, {"output_tokens", 1}})}})}}));
  chunks.front().delay = latency;
  if (drop) return FakeResponse::events(std::move(chunks));
  add("ping", obj({{"type", "ping"}}));
  for (size_t i = 0; i < content.size(); ++i) {
    const Value& b = content[i];
    const int64_t index = static_cast<int64_t>(i);
    if (str_field(b, "type") == "text") {
      add("content_block_start", obj({{"type", "content_block_start"},
                                      {"index", index},
                                      {"content_block", obj({{"type", "text"}, {"text", ""}})}}));
      // The text in two deltas, as a model streams it in pieces.
      const std::string text = str_field(b, "text");
      const size_t half = text.size() / 2;
      for (const std::string& piece : {text.substr(0, half), text.substr(half)})
        if (!piece.empty())
          add("content_block_delta", obj({{"type", "content_block_delta"},
                                          {"index", index},
                                          {"delta", obj({{"type", "text_delta"}, {"text", piece}})}}));
    } else {
      add("content_block_start",
          obj({{"type", "content_block_start"},
               {"index", index},
               {"content_block", obj({{"type", "tool_use"}, {"id", *b.find("id")}, {"name", *b.find("name")},
                                      {"input", Object{}}})}}));
      const std::string input = json::dump(*b.find("input"));
      const size_t half = input.size() / 2;
      for (const std::string& piece : {input.substr(0, half), input.substr(half)})
        add("content_block_delta", obj({{"type", "content_block_delta"},
                                        {"index", index},
                                        {"delta", obj({{"type", "input_json_delta"}, {"partial_json", piece}})}}));
    }
    add("content_block_stop", obj({{"type", "content_block_stop"}, {"index", index}}));
  }
  add("message_delta", obj({{"type", "message_delta"},
                            {"delta", obj({{"stop_reason", stop}, {"stop_sequence", nullptr}})},
                            {"usage", obj({{"output_tokens", 10}})}}));
  add("message_stop", obj({{"type", "message_stop"}}));
  return FakeResponse::events(std::move(chunks));
}

}  // namespace anvil::fakes
