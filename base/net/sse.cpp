#include "base/net/sse.hpp"

namespace anvil::net {

bool SseParser::feed(std::string_view bytes, const std::function<void(const SseEvent&)>& emit) {
  while (!bytes.empty()) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (bytes.front() == '\n') {
        bytes.remove_prefix(1);
        continue;
      }
    }
    const size_t eol = bytes.find_first_of("\r\n");
    if (eol == std::string_view::npos) {
      line_.append(bytes);
      break;
    }
    skip_lf_ = bytes[eol] == '\r';
    if (line_.empty()) {
      line(bytes.substr(0, eol), emit);
    } else {
      line_.append(bytes.substr(0, eol));
      line(line_, emit);
      line_.clear();
    }
    bytes.remove_prefix(eol + 1);
  }
  return line_.size() + data_.size() + event_.size() <= max_event_bytes_;
}

void SseParser::line(std::string_view l, const std::function<void(const SseEvent&)>& emit) {
  if (l.empty()) {
    if (has_data_) {
      if (!data_.empty() && data_.back() == '\n') data_.pop_back();
      SseEvent ev{event_.empty() ? std::string("message") : std::move(event_), std::move(data_), last_id_};
      emit(ev);
    }
    has_data_ = false;
    event_.clear();
    data_.clear();
    return;
  }
  if (l.front() == ':') return;  // comment (keep-alive pings)
  const size_t colon = l.find(':');
  std::string_view field = l.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view{} : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "event") {
    event_.assign(value);
  } else if (field == "data") {
    has_data_ = true;
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  }
  // "retry" and unknown fields are ignored: reconnection is the caller's call.
}

}  // namespace anvil::net
