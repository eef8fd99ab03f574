// AnthropicFake: the Anthropic Messages API (`POST /v1/messages`) on
// 127.0.0.1, plain JSON and streamed (server-sent events: message_start,
// content_block_start / _delta / _stop, message_delta, message_stop), with
// `tool_use` blocks and the API's error shapes (429 rate_limit_error with
// retry-after, 500 api_error, 529 overloaded_error), for tests of the
// GrowQR agent loop.
//
// Replies come from rules matched against the request's last turn, first
// match wins:
//   - a user text turn matches a rule whose `match` is a substring of its
//     last text block;
//   - a turn of tool results matches "tool_result:<tool name>" (the name of
//     the tool_use block the first result answers).
// A reply is a list of content blocks ({type:"text", text} or
// {type:"tool_use", name, input}; tool_use ids are generated) and a
// stop_reason (default: "tool_use" when the reply has a tool_use block,
// else "end_turn"). Without a matching rule the reply is the text
// "ok: <last user text>". In a rule's reply text, "{{text}}" stands for the
// last user text and "{{result}}" for the first tool result's content.
//
//   AnthropicFake llm;
//   llm.rule("remember", {Block::tool("commit_memory", obj({{"path","a.md"},{"content","x"}}))});
//   llm.rule("tool_result:commit_memory", {Block::text("Saved.")});
//   llm.fail_next(2, 529);                 // two overloaded answers, then the rules again
//   ... ANTHROPIC_BASE_URL = llm.url() ...
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "base/value/value.hpp"
#include "tests/fakes/fake_http.hpp"

namespace anvil::fakes {

class AnthropicFake {
 public:
  struct Block {
    std::string type;  // "text" | "tool_use"
    std::string text;
    std::string name;
    Value input;
    static Block text_block(std::string t) { return {"text", std::move(t), "", Value()}; }
    static Block tool(std::string name, Value input) { return {"tool_use", "", std::move(name), std::move(input)}; }
  };
  struct Reply {
    std::vector<Block> content;
    std::string stop_reason;  // empty: derived from the content
  };
  struct Rule {
    std::string match;
    Reply reply;
  };

  struct Options {
    int threads = 2;
    bool record = true;
    std::string api_key;  // when set, requests must carry it as x-api-key (else 401 authentication_error)
  };

  AnthropicFake();
  explicit AnthropicFake(Options options);

  std::string url() const { return server_.url("/"); }  // the base URL ("http://127.0.0.1:<port>/")
  FakeHttpServer& server() { return server_; }

  void rule(std::string match, std::vector<Block> content, std::string stop_reason = "");
  // Rules from a JSON array: [{ "match": "...", "reply": { "content": [...], "stop_reason"?: "..." } }].
  void rules_from_json(const Value& rules);
  void clear_rules();
  // The next `n` requests answer `status` (429 carries retry-after: 1, 529 is
  // overloaded_error, else api_error), then rules again.
  void fail_next(int n, int status);
  // Streams cut after message_start: the next `n` streamed replies end
  // without message_stop (the connection closes mid-message).
  void drop_stream_next(int n);
  // Time before the reply starts (first byte), to model the model's latency.
  void latency(std::chrono::milliseconds d);

  // Requests answered so far (bodies parsed), in arrival order (with
  // Options::record); request_count() counts them either way and is also
  // served at GET /_fake/stats as {requests}.
  std::vector<Value> requests() const;
  size_t request_count() const;

 private:
  FakeResponse answer(const RecordedRequest& req);
  Reply pick(const Value& request, std::string& last_text, std::string& first_result) const;

  Options options_;
  FakeHttpServer server_;
  mutable std::mutex mu_;
  std::vector<Rule> rules_;
  std::vector<Value> requests_;
  int fail_n_ = 0, fail_status_ = 0, drop_n_ = 0;
  std::chrono::milliseconds latency_{0};
  uint64_t next_id_ = 1;
  size_t count_ = 0;
};

}  // namespace anvil::fakes
