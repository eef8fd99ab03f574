// Incremental text/event-stream parser (WHATWG HTML §9.2.6): bytes in,
// events out, in order. Lines end with CRLF, LF or CR (also when the CR and
// LF arrive in different reads); a blank line dispatches the event.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace anvil::net {

struct SseEvent {
  std::string event;  // "message" when the event named no type
  std::string data;   // data lines joined with "\n"
  std::string id;     // the last event id seen on the stream (it persists across events)
};

class SseParser {
 public:
  explicit SseParser(size_t max_event_bytes = size_t{64} << 20) : max_event_bytes_(max_event_bytes) {}

  // Calls emit for every event completed by `bytes`. Returns false (and
  // stops parsing) once one event's pending bytes exceed max_event_bytes.
  bool feed(std::string_view bytes, const std::function<void(const SseEvent&)>& emit);

 private:
  void line(std::string_view l, const std::function<void(const SseEvent&)>& emit);

  size_t max_event_bytes_;
  std::string line_;           // the incomplete line carried between feeds
  bool skip_lf_ = false;       // the previous byte was a CR ending a line
  bool has_data_ = false;
  std::string event_, data_, last_id_;
};

}  // namespace anvil::net
