#include "actors/growqr/memory/memory_path.hpp"

#include <vector>

namespace anvil::growqr {
namespace {

constexpr size_t kMaxPath = 256, kMaxSegment = 100, kMaxSegments = 8;

Error invalid(std::string_view path, std::string reason) {
  return make_error("memory", "invalid_path", "Invalid memory path `" + std::string(path) + "`: " + reason + ".",
                    obj({{"path", std::string(path)}, {"reason", reason}}));
}

bool allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == '/';
}

// Shared by paths and prefixes: the normalized segments, or why not.
Result<std::vector<std::string>> segments(std::string_view raw, bool allow_trailing_slash) {
  if (raw.empty()) return invalid(raw, "it is empty");
  if (raw.front() == '/') return invalid(raw, "it is absolute");
  for (char c : raw) {
    if (c == '\\') return invalid(raw, "it contains a backslash");
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return invalid(raw, "it contains a control character");
    if (!allowed(c)) return invalid(raw, "only letters, digits, '.', '_', '-' and '/' are allowed");
  }
  if (raw.back() == '/' && !allow_trailing_slash) return invalid(raw, "it names a directory");
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t end = raw.find('/', pos);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view seg = raw.substr(pos, end - pos);
    pos = end + 1;
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") return invalid(raw, "it contains `..`");
    if (seg.front() == '.') return invalid(raw, "a segment starts with '.'");
    if (seg.size() > kMaxSegment) return invalid(raw, "a segment is longer than 100 bytes");
    out.emplace_back(seg);
  }
  if (out.empty()) return invalid(raw, "it has no file name");
  if (out.size() > kMaxSegments) return invalid(raw, "it is deeper than 8 segments");
  return out;
}

std::string join(const std::vector<std::string>& segs) {
  std::string s;
  for (const auto& seg : segs) s += (s.empty() ? "" : "/") + seg;
  return s;
}

}  // namespace

Result<std::string> normalize_memory_path(std::string_view path) {
  auto segs = segments(path, false);
  if (!segs.ok()) return segs.error();
  std::string out = join(*segs);
  if (out.size() > kMaxPath) return invalid(path, "it is longer than 256 bytes");
  if (out.size() < 4 || out.compare(out.size() - 3, 3, ".md") != 0) return invalid(path, "it must end in .md");
  return out;
}

Result<std::string> normalize_memory_prefix(std::string_view prefix) {
  if (prefix.empty()) return std::string();
  auto segs = segments(prefix, true);
  if (!segs.ok()) return segs.error();
  std::string out = join(*segs);
  if (prefix.back() == '/') out += '/';
  if (out.size() > kMaxPath) return invalid(prefix, "it is longer than 256 bytes");
  return out;
}

}  // namespace anvil::growqr
