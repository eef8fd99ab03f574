#include "runtime/actor_key.hpp"

namespace anvil {

std::string serialize_key(const ActorKey& key) {
  if (key.empty()) return "/";
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    if (i) out += '/';
    const auto& part = key[i];
    if (part.empty()) {
      out += "\\0";
      continue;
    }
    for (char c : part) {
      if (c == '\\' || c == '/') out += '\\';
      out += c;
    }
  }
  return out;
}

ActorKey deserialize_key(std::string_view s) {
  ActorKey out;
  if (s.empty() || s == "/") return out;
  std::string cur;
  bool cur_empty_marker = false;
  bool saw_separator = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      if (i + 1 == s.size()) {
        cur += c;  // trailing lone backslash is literal
        continue;
      }
      char n = s[++i];
      if (n == '0')
        cur_empty_marker = true;
      else
        cur += n;
    } else if (c == '/') {
      saw_separator = true;
      out.push_back(cur_empty_marker ? std::string() : std::move(cur));
      cur.clear();
      cur_empty_marker = false;
    } else {
      cur += c;
    }
  }
  if (!cur.empty() || cur_empty_marker || saw_separator)
    out.push_back(cur_empty_marker ? std::string() : std::move(cur));
  return out;
}

ActorKey split_query_key(std::string_view s) {
  ActorKey out;
  if (s.empty()) return out;
  size_t start = 0;
  for (;;) {
    size_t comma = s.find(',', start);
    out.emplace_back(s.substr(start, comma == std::string_view::npos ? s.npos : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Status validate_key(const ActorKey& key) {
  for (const auto& part : key)
    if (part.size() > 128)
      return make_error("actor", "key_too_large", "Actor key component exceeds 128 bytes.");
  if (serialize_key(key).size() > 1024)
    return make_error("actor", "key_too_large", "Serialized actor key exceeds 1024 bytes.");
  return Ok{};
}

}  // namespace anvil
