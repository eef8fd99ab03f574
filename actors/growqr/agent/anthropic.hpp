// The Anthropic Messages API as the GrowQR agent uses it: the request it
// sends (model, system prompt, tools, the conversation so far, streamed) and
// the assembly of a streamed reply from its server-sent events into one
// assistant message, calling back for every text delta so a UI can stream.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "runtime/actor_api.hpp"

namespace anvil::growqr {

struct LlmConfig {
  std::string base_url;  // ANTHROPIC_BASE_URL, default https://api.anthropic.com
  std::string api_key;   // ANTHROPIC_API_KEY
  std::string model;     // GROWQR_AGENT_MODEL, default claude-sonnet-4-5
  int64_t max_tokens = 1024;                         // GROWQR_AGENT_MAX_TOKENS
  std::chrono::milliseconds timeout{60'000};         // GROWQR_AGENT_LLM_TIMEOUT_MS: headers and every gap between events
};

// The configuration from the node's settings; agent.llm_not_configured (503)
// without an API key. `model_key` names the setting that picks the model
// (GROWQR_AGENT_MODEL for the agent, CONVERSATION_ACTOR_MODEL for
// conversations; the agent's model when unset).
Result<LlmConfig> llm_config(const ActorContext& c, std::string_view model_key = "GROWQR_AGENT_MODEL");

// POST {base}/v1/messages with stream: true.
net::HttpRequest messages_request(const LlmConfig& cfg, const std::string& system, const Value& tools,
                                  const Value& messages);

// Builds the assistant message from the stream's events. Errors: an `error`
// event (llm.<error type>, e.g. llm.overloaded_error), malformed JSON
// (llm.bad_stream), and a stream that ends before message_stop
// (llm.incomplete_stream).
class MessageAssembler {
 public:
  using TextFn = std::function<void(const std::string& delta)>;
  explicit MessageAssembler(TextFn on_text = nullptr) : on_text_(std::move(on_text)) {}
  void feed(const net::SseEvent& ev);
  // {role: "assistant", content: [blocks], stop_reason}.
  Result<Value> finish();

 private:
  TextFn on_text_;
  Array blocks_;
  std::vector<std::string> partial_json_;  // per block, tool_use input as it streams
  std::string stop_reason_;
  bool started_ = false, stopped_ = false;
  std::optional<Error> error_;
};

// One streamed model call through the node's outbound client: the assembled
// assistant message, or the stream's / the client's error. `on_text` gets
// every text delta while the call is live, never after it returned (a call
// cancelled by a deadline or shutdown stops calling it).
Task<Result<Value>> stream_message(ActorContext& c, const LlmConfig& cfg, std::string system, Value tools,
                                   Value messages, std::function<void(const std::string&)> on_text);

// The concatenated text blocks of an assistant message.
std::string message_text(const Value& message);

}  // namespace anvil::growqr
