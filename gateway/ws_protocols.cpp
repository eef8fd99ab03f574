#include "gateway/ws_protocols.hpp"

#include "engine-api/http.hpp"

namespace anvil::gateway {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

WsProtocols parse_ws_protocols(std::string_view header) {
  WsProtocols p;
  size_t start = 0;
  while (start <= header.size()) {
    size_t comma = header.find(',', start);
    std::string_view item = trim(header.substr(start, comma == header.npos ? header.npos : comma - start));
    auto value_of = [&](std::string_view prefix) -> std::optional<std::string> {
      if (item.substr(0, prefix.size()) == prefix) return std::string(item.substr(prefix.size()));
      return std::nullopt;
    };
    if (item == "rivet") p.rivet = true;
    else if (item == "rivet_skip_ready_wait") p.skip_ready_wait = true;
    else if (auto v = value_of("rivet_encoding.")) p.encoding = *v;
    else if (auto v = value_of("rivet_target.")) p.target = *v;
    else if (auto v = value_of("rivet_actor.")) p.actor_id = http::percent_decode(*v).value_or(*v);
    else if (auto v = value_of("rivet_token.")) p.token = http::percent_decode(*v).value_or(*v);
    else if (auto v = value_of("rivet_inspector_token.")) p.inspector_token = *v;
    else if (auto v = value_of("rivet_conn_params.")) {
      auto decoded = http::percent_decode(*v);
      p.conn_params_malformed = !decoded;
      p.conn_params.reset();
      if (decoded && !decoded->empty()) p.conn_params = std::move(*decoded);
    }
    if (comma == header.npos) break;
    start = comma + 1;
  }
  return p;
}

}  // namespace anvil::gateway
