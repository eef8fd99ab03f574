#include "base/log/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "base/value/json_string.hpp"

namespace anvil::log {
namespace {

thread_local Context tl_context;

bool is_key_char(char c, bool first) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (first) return false;
  return (c >= '0' && c <= '9') || c == '_' || c == '.';
}

// Field names a message's key=value words may never take.
bool reserved(std::string_view k) {
  for (std::string_view r : {"ts", "level", "msg", "logger", "thread"})
    if (k == r) return true;
  return false;
}

void field(std::string& out, std::string_view name, std::string_view value) {
  out += ',';
  json::write_string(out, name);
  out += ':';
  json::write_string(out, value);
}

// Appends ` name=value` for the set context fields (text format).
class ContextFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const Context& c = tl_context;
    auto add = [&](std::string_view k, std::string_view v) {
      if (v.empty()) return;
      dest.push_back(' ');
      dest.append(k.data(), k.data() + k.size());
      dest.push_back('=');
      dest.append(v.data(), v.data() + v.size());
    };
    add("actorId", c.actor_id);
    add("actorName", c.actor_name);
    add("rayId", c.ray_id);
    add("traceId", c.trace_id);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<ContextFlag>(); }
};

}  // namespace

const Context& current() { return tl_context; }

Context exchange(const Context& next) {
  Context prev = tl_context;
  tl_context = next;
  return prev;
}

Scope::Scope(const Context& add) : saved_(tl_context) {
  if (!add.actor_id.empty()) tl_context.actor_id = add.actor_id;
  if (!add.actor_name.empty()) tl_context.actor_name = add.actor_name;
  if (!add.ray_id.empty()) tl_context.ray_id = add.ray_id;
  if (!add.trace_id.empty()) tl_context.trace_id = add.trace_id;
  if (!add.span_id.empty()) tl_context.span_id = add.span_id;
}

Scope::~Scope() { tl_context = saved_; }

void JsonFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  std::string out = "{\"ts\":";
  const auto t = msg.time;
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char ts[96];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(micros));
  json::write_string(out, ts);
  const auto lv = spdlog::level::to_string_view(msg.level);
  field(out, "level", std::string_view(lv.data(), lv.size()));
  const std::string_view text(msg.payload.data(), msg.payload.size());
  field(out, "msg", text);
  if (msg.logger_name.size() > 0) field(out, "logger", std::string_view(msg.logger_name.data(), msg.logger_name.size()));
  out += ",\"thread\":" + std::to_string(msg.thread_id);
  const Context& c = tl_context;
  // Fields written so far (",name,"): a message's key=value word never repeats one.
  std::string seen = ",";
  auto context_field = [&](std::string_view name, std::string_view value) {
    if (value.empty()) return;
    field(out, name, value);
    seen += std::string(name) + ",";
  };
  context_field("actorId", c.actor_id);
  context_field("actorName", c.actor_name);
  context_field("rayId", c.ray_id);
  context_field("traceId", c.trace_id);
  context_field("spanId", c.span_id);
  // key=value words of the message: application fields.
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    const size_t start = i;
    while (i < text.size() && text[i] != ' ') ++i;
    const std::string_view word = text.substr(start, i - start);
    const size_t eq = word.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 >= word.size()) continue;
    std::string_view key = word.substr(0, eq);
    bool ok = true;
    for (size_t k = 0; k < key.size() && ok; ++k) ok = is_key_char(key[k], k == 0);
    if (!ok || reserved(key)) continue;
    std::string marker = "," + std::string(key) + ",";
    if (seen.find(marker) != std::string::npos) continue;  // first one wins
    seen += std::string(key) + ",";
    std::string_view value = word.substr(eq + 1);
    while (!value.empty() && (value.back() == ',' || value.back() == ';' || value.back() == ')')) value.remove_suffix(1);
    field(out, key, value);
  }
  out += "}\n";
  dest.append(out.data(), out.data() + out.size());
}

namespace {

bool lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool all_zero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

}  // namespace

Context trace_fields(const std::optional<TraceParent>& tp) {
  if (!tp) return Context{};
  return Context{{}, {}, {}, tp->trace_id, tp->parent_id};
}

std::string valid_traceparent(std::string_view header) {
  return parse_traceparent(header) ? std::string(header) : std::string();
}

std::optional<TraceParent> parse_traceparent(std::string_view h) {
  // version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  const std::string_view version = h.substr(0, 2), trace = h.substr(3, 32), parent = h.substr(36, 16),
                         flags = h.substr(53, 2);
  if (!lower_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" && h.size() != 55) return std::nullopt;
  if (version != "00" && h.size() > 55 && h[55] != '-') return std::nullopt;
  if (!lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags)) return std::nullopt;
  if (all_zero(trace) || all_zero(parent)) return std::nullopt;
  return TraceParent{std::string(trace), std::string(parent), std::string(flags)};
}

TraceParent child_of(const TraceParent& parent) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t id = 0;
  while (id == 0) id = rng();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return TraceParent{parent.trace_id, buf, parent.flags};
}

std::unique_ptr<spdlog::formatter> JsonFormatter::clone() const { return std::make_unique<JsonFormatter>(); }

bool set_format(const std::string& format) {
  if (format == "json") {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
    return true;
  }
  if (format == "text") {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<ContextFlag>('*').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v%*");
    spdlog::set_formatter(std::move(f));
    return true;
  }
  return false;
}

}  // namespace anvil::log
