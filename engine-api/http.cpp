#include "engine-api/http.hpp"

#include <algorithm>

#include "base/value/json.hpp"

namespace anvil::http {
namespace {

std::optional<std::string_view> find_header(const Headers& hs, std::string_view name) {
  for (const auto& [k, v] : hs)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string_view> Request::header(std::string_view n) const { return find_header(headers, n); }
std::optional<std::string_view> Response::header(std::string_view n) const { return find_header(headers, n); }

void Response::set_header(std::string name, std::string value) {
  for (auto& [k, v] : headers)
    if (k == name) {
      v = std::move(value);
      return;
    }
  headers.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string> percent_decode(std::string_view s, bool form) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (form && c == '+') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '!' || c == '~' ||
        c == '*' || c == '\'' || c == '(' || c == ')') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::vector<QueryParam> parse_query(std::string_view raw) {
  std::vector<QueryParam> out;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t amp = raw.find('&', start);
    std::string_view part = raw.substr(start, amp == raw.npos ? raw.npos : amp - start);
    if (!part.empty()) {
      QueryParam p;
      p.raw = std::string(part);
      size_t eq = part.find('=');
      std::string_view k = part.substr(0, eq), v = eq == part.npos ? "" : part.substr(eq + 1);
      p.name = percent_decode(k, true).value_or(std::string(k));
      p.value = percent_decode(v, true).value_or(std::string(v));
      out.push_back(std::move(p));
    }
    if (amp == raw.npos) break;
    start = amp + 1;
  }
  return out;
}

std::optional<std::string> query_value(const std::vector<QueryParam>& q, std::string_view name) {
  for (const auto& p : q)
    if (p.name == name) return p.value;
  return std::nullopt;
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == path.npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

Response json_response(int status, const Value& body) {
  Response r;
  r.status = status;
  r.headers.emplace_back("content-type", "application/json");
  r.body = json::dump(body);
  return r;
}

Response error_response(const Error& e, int status) {
  Object o{{"group", e.group}, {"code", e.code}, {"message", e.message}};
  if (e.metadata) o.emplace_back("metadata", *e.metadata);
  Response r = json_response(status ? status : http_status_for(e), Value(std::move(o)));
  r.headers.emplace_back("x-rivet-error", e.qualified());
  return r;
}

}  // namespace anvil::http
