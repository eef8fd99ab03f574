// One piece of the JSON writer (json.cpp) for code that writes JSON by hand
// (the JSON log lines of base/log).
#pragma once

#include <string>
#include <string_view>

namespace anvil::json {

// Appends `s` as a JSON string literal (quotes included), invalid UTF-8
// replaced with U+FFFD.
void write_string(std::string& out, std::string_view s);

}  // namespace anvil::json
