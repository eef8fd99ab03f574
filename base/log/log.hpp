// Structured logging on top of spdlog.
//
// `--log-format json` makes every line one JSON object with stable field
// names (docs/operator-guide.md, "Logs"):
//   ts, level, msg, logger, thread        always
//   actorId, actorName                    while an actor's turn runs
//   rayId, traceId, spanId                while a request (or the turn it
//                                         started) carries them
//   <key>: "<value>"                      each `key=value` word of the
//                                         message (application fields such
//                                         as userId=…), never overriding the
//                                         fields above
// The context is per thread: a turn sets it while its body runs on the
// actor's strand (LogScope), so lines logged by actor code carry it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

namespace anvil::log {

struct Context {
  std::string_view actor_id, actor_name, ray_id, trace_id, span_id;
};

// The calling thread's context (empty fields when unset).
const Context& current();
// Replaces the calling thread's context; returns the one it had. For code
// that cannot nest a Scope (a coroutine that suspends between the two).
Context exchange(const Context& next);

// Sets fields of the thread's context for its lifetime, restoring the
// previous ones after. Empty arguments leave a field as it was. The views
// must outlive the scope.
class Scope {
 public:
  explicit Scope(const Context& add);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Context saved_;
};

// One JSON object per line (the fields above).
class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Text (the default: spdlog's pattern, with " actorId=… rayId=…" appended
// when set) or json, for the default logger. false for an unknown format.
bool set_format(const std::string& format);

// W3C Trace Context (https://www.w3.org/TR/trace-context/): a
// `traceparent` header "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>".
struct TraceParent {
  std::string trace_id;   // 32 lowercase hex digits, not all zero
  std::string parent_id;  // 16 lowercase hex digits, not all zero
  std::string flags;      // 2 hex digits
  // The header value.
  std::string header() const { return "00-" + trace_id + "-" + parent_id + "-" + flags; }
};
// nullopt for anything but a valid version-00 header (or a future version's
// first four fields, as the spec asks).
std::optional<TraceParent> parse_traceparent(std::string_view header);
// The header itself when it is valid, else "" (an invalid one is ignored).
std::string valid_traceparent(std::string_view header);
// The context fields of a trace (trace id, and its parent id as the span):
// none when `tp` is empty. Views into `tp`, which must outlive their use.
Context trace_fields(const std::optional<TraceParent>& tp);
// The same trace with a new random span id: what a hop passes on.
TraceParent child_of(const TraceParent& parent);


}  // namespace anvil::log
