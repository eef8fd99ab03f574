// OpenCodeFake: the subset of OpenCode's server API (`opencode serve`) that
// GrowQR's subAgent uses (SEEDS-INVENTORY F.3), on 127.0.0.1:
//
//   GET  /global/health              {healthy: true, version}
//   POST /session {title?, parentID?} Session {id: "ses_<n>", title, version, time: {created, updated}}
//   GET  /session                    [Session]
//   GET  /session/:id                Session | 404
//   POST /session/:id/message        {parts: [{type: "text", text}]} -> after the reply delay:
//                                    {info: AssistantMessage, parts: [TextPart]} (as OpenCode, the
//                                    answer comes when the assistant is done)
//   GET  /session/:id/message        [{info, parts}] oldest first: the user message at once, the
//                                    assistant's once its reply delay has passed
//   POST /session/:id/abort          true
//   GET  /event                      SSE, one JSON object per `data:` line, {type, properties}:
//     server.connected      {}                                            on connect
//     message.updated       {info: {id, sessionID, role: "user"|"assistant", time: {created, completed?}}}
//     message.part.updated  {part: {id, sessionID, messageID, type: "text", text}, delta}
//     session.idle          {sessionID}
//   For every message: the user message.updated at once; the assistant's
//   text in two message.part.updated events over the reply delay; the
//   assistant message.updated (completed); session.idle. A stream carries
//   only events published after it connected (as OpenCode's bus).
//
// These shapes follow OpenCode's SDK types (Session, UserMessage,
// AssistantMessage, TextPart, Event*) as far as GrowQR reads them: `type`,
// `properties.info.sessionID`, `properties.part.sessionID/text`,
// `properties.sessionID`. Anything else OpenCode sends is ignored by the
// client, so the fake leaves it out.
//
// Counts for D14: messages_for(session) is the number of prompts received.
// Faults: fail_next(n, status) (any route), hang_next(n), healthy(false)
// (health answers 503), end_event_streams() (cuts every open /event).
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/value/value.hpp"
#include "tests/fakes/fake_http.hpp"

namespace anvil::fakes {

class OpenCodeFake {
 public:
  // port 0: an ephemeral port.
  explicit OpenCodeFake(uint16_t port = 0);
  ~OpenCodeFake();

  std::string url() const;  // "http://127.0.0.1:<port>"
  FakeHttpServer& http() { return server_; }

  int sessions_created() const;
  std::vector<std::string> session_ids() const;
  int messages_for(const std::string& session) const;
  std::vector<std::string> prompts(const std::string& session) const;
  int event_streams_opened() const;

  // The assistant's reply: "done: <prompt>" unless set.
  void reply_with(std::string text);
  void reply_delay(std::chrono::milliseconds d);
  void fail_next(int n, int status = 500);
  void hang_next(int n);
  void healthy(bool h);
  void end_event_streams();

 private:
  struct Message {
    Value info;
    Value parts;
    std::chrono::steady_clock::time_point visible_at;  // the assistant's answer exists once it is done
  };
  struct Session {
    Value info;
    std::vector<Message> messages;
    std::vector<std::string> prompts;
  };
  struct Pending {
    std::chrono::steady_clock::time_point due;
    std::string data;  // JSON of {type, properties}
  };
  FakeResponse handle(const RecordedRequest& req);
  FakeResponse message(const std::string& id, const Value& body);
  void publish(std::chrono::steady_clock::time_point due, Value event);  // needs mu_

  mutable std::mutex mu_;
  std::map<std::string, Session> sessions_;  // GUARDED_BY(mu_)
  std::vector<std::string> order_;           // GUARDED_BY(mu_) session ids in creation order
  std::vector<Pending> bus_;                 // GUARDED_BY(mu_)
  std::string reply_;                        // GUARDED_BY(mu_)
  std::chrono::milliseconds delay_{50};      // GUARDED_BY(mu_)
  int fail_left_ = 0, fail_status_ = 500, hang_left_ = 0;  // GUARDED_BY(mu_)
  bool healthy_ = true;                      // GUARDED_BY(mu_)
  uint64_t stream_epoch_ = 0;                // GUARDED_BY(mu_) bumped by end_event_streams
  int streams_ = 0;                          // GUARDED_BY(mu_)
  int next_id_ = 1;                          // GUARDED_BY(mu_)
  FakeHttpServer server_;
};

}  // namespace anvil::fakes
