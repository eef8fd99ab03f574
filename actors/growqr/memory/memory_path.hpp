// Memory file paths: the one place that decides what a memory path may be
// (seed 000's "route owns path safety" moved into the memory layer, so every
// caller — growAgent's tools, routes, other actors — gets the same rules).
//
// A path is relative, '/'-separated, and names a markdown file:
//   - normalized first: repeated '/' collapse and "." segments are dropped
//     ("a//b/./c.md" -> "a/b/c.md");
//   - then rejected (memory.invalid_path, metadata {path, reason}) when it is
//     empty, absolute ("/x.md"), ends in '/', has a ".." segment or a segment
//     starting with '.' (".git", ".hidden.md"), contains a backslash, a
//     control character or any byte outside [A-Za-z0-9._-] and '/', has a
//     segment over 100 bytes, more than 8 segments or more than 256 bytes,
//     or does not end in ".md" (memory is plain markdown, seed 001).
// The character set is deliberately small: such a path needs no escaping
// in a URL (Gitea's contents API), a shell or a file system.
#pragma once

#include <string>
#include <string_view>

#include "base/value/error.hpp"

namespace anvil::growqr {

// The normalized path, or memory.invalid_path.
Result<std::string> normalize_memory_path(std::string_view path);

// A listing prefix: "" (everything) or a normalized directory-ish prefix
// under the same character rules (need not end in ".md"); memory.invalid_path.
Result<std::string> normalize_memory_prefix(std::string_view prefix);

}  // namespace anvil::growqr
