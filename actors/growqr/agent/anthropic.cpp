#include "actors/growqr/agent/anthropic.hpp"

#include "actors/growqr/missions/app_util.hpp"
#include "base/value/json.hpp"

namespace anvil::growqr {

Result<LlmConfig> llm_config(const ActorContext& c, std::string_view model_key) {
  LlmConfig cfg;
  cfg.base_url = c.config("ANTHROPIC_BASE_URL").value_or("https://api.anthropic.com");
  while (!cfg.base_url.empty() && cfg.base_url.back() == '/') cfg.base_url.pop_back();
  cfg.api_key = c.config("ANTHROPIC_API_KEY").value_or("");
  if (cfg.api_key.empty())
    return make_error("agent", "llm_not_configured", "ANTHROPIC_API_KEY is not set on this node.");
  cfg.model = c.config(model_key).value_or(c.config("GROWQR_AGENT_MODEL").value_or("claude-sonnet-4-5"));
  cfg.max_tokens = config_int(c, "GROWQR_AGENT_MAX_TOKENS", 1024, 1, 64'000);
  cfg.timeout = std::chrono::milliseconds(config_int(c, "GROWQR_AGENT_LLM_TIMEOUT_MS", 60'000, 100, 600'000));
  return cfg;
}

net::HttpRequest messages_request(const LlmConfig& cfg, const std::string& system, const Value& tools,
                                  const Value& messages) {
  Value body = obj({{"model", cfg.model}, {"max_tokens", cfg.max_tokens}, {"system", system}});
  if (tools.is_array() && !tools.as_array().empty()) body["tools"] = tools;
  body["messages"] = messages;
  body["stream"] = true;
  net::HttpRequest req;
  req.method = "POST";
  req.url = cfg.base_url + "/v1/messages";
  req.headers = {{"content-type", "application/json"},
                 {"accept", "text/event-stream"},
                 {"x-api-key", cfg.api_key},
                 {"anthropic-version", "2023-06-01"}};
  req.body = json::dump(body);
  req.total_timeout = cfg.timeout;
  return req;
}

void MessageAssembler::feed(const net::SseEvent& ev) {
  if (error_ || ev.data.empty()) return;
  auto parsed = json::parse(ev.data, false);
  if (!parsed.ok() || !parsed->is_object()) {
    error_ = make_error("llm", "bad_stream", "The model's stream sent an event that is not a JSON object.");
    return;
  }
  const Value& d = *parsed;
  const std::string type = str_or(d, "type", ev.event);
  if (type == "message_start") {
    started_ = true;
  } else if (type == "content_block_start") {
    const int64_t index = int_or(d, "index", -1);
    const Value& block = field_or_null(d, "content_block");
    if (index != static_cast<int64_t>(blocks_.size()) || !block.is_object()) {
      error_ = make_error("llm", "bad_stream", "The model's stream opened content blocks out of order.");
      return;
    }
    blocks_.push_back(block);
    partial_json_.emplace_back();
  } else if (type == "content_block_delta") {
    const int64_t index = int_or(d, "index", -1);
    if (index < 0 || index >= static_cast<int64_t>(blocks_.size())) {
      error_ = make_error("llm", "bad_stream", "The model's stream sent a delta for an unknown block.");
      return;
    }
    const Value& delta = field_or_null(d, "delta");
    const std::string dtype = str_or(delta, "type");
    Value& block = blocks_[static_cast<size_t>(index)];
    if (dtype == "text_delta") {
      const std::string text = str_or(delta, "text");
      block["text"] = str_or(block, "text") + text;
      if (on_text_ && !text.empty()) on_text_(text);
    } else if (dtype == "input_json_delta") {
      partial_json_[static_cast<size_t>(index)] += str_or(delta, "partial_json");
    }
  } else if (type == "content_block_stop") {
    const int64_t index = int_or(d, "index", -1);
    if (index < 0 || index >= static_cast<int64_t>(blocks_.size())) return;
    Value& block = blocks_[static_cast<size_t>(index)];
    const std::string& partial = partial_json_[static_cast<size_t>(index)];
    if (str_or(block, "type") == "tool_use" && !partial.empty()) {
      auto input = json::parse(partial, false);
      if (!input.ok() || !input->is_object()) {
        error_ = make_error("llm", "bad_stream", "A tool call's input is not a JSON object.");
        return;
      }
      block["input"] = *input;
    }
  } else if (type == "message_delta") {
    const std::string stop = str_or(field_or_null(d, "delta"), "stop_reason");
    if (!stop.empty()) stop_reason_ = stop;
  } else if (type == "message_stop") {
    stopped_ = true;
  } else if (type == "error") {
    const Value& e = field_or_null(d, "error");
    error_ = make_error("llm", str_or(e, "type", "api_error"), "The model's stream failed: " + str_or(e, "message"));
  }
}

Result<Value> MessageAssembler::finish() {
  if (error_) return *error_;
  if (!started_ || !stopped_)
    return make_error("llm", "incomplete_stream", "The model's stream ended before the message was complete.");
  return obj({{"role", "assistant"}, {"content", blocks_}, {"stop_reason", stop_reason_}});
}

Task<Result<Value>> stream_message(ActorContext& c, const LlmConfig& cfg, std::string system, Value tools,
                                   Value messages, std::function<void(const std::string&)> on_text) {
  net::HttpRequest req = messages_request(cfg, system, tools, messages);
  // Shared with the event callback, which the client may still call after
  // a cancelled wait returned; `live` turns false when this call returns.
  struct Stream {
    bool live = true;
    std::function<void(const std::string&)> on_text;
    MessageAssembler assembler;
  };
  auto stream = std::make_shared<Stream>();
  stream->on_text = std::move(on_text);
  std::weak_ptr<Stream> weak = stream;
  stream->assembler = MessageAssembler([weak](const std::string& delta) {
    if (auto s = weak.lock(); s && s->live && s->on_text) s->on_text(delta);
  });
  std::function<void(const net::SseEvent&)> on_event = [stream](const net::SseEvent& ev) { stream->assembler.feed(ev); };
  auto res = co_await c.http_stream(std::move(req), std::move(on_event));
  stream->live = false;
  if (!res.ok()) co_return res.error();
  co_return stream->assembler.finish();
}

std::string message_text(const Value& message) {
  std::string out;
  if (const Value* content = message.find("content"); content && content->is_array())
    for (const Value& b : content->as_array())
      if (str_or(b, "type") == "text") out += str_or(b, "text");
  return out;
}

}  // namespace anvil::growqr
