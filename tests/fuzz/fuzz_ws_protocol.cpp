// WebSocket subprotocols (gateway/ws_protocols.hpp): the raw
// `Sec-WebSocket-Protocol` header of an upgrade, as rivetkit's client sends
// it (`rivet,rivet_encoding.json,rivet_conn_params.%7B…%7D`, plus the
// header-routing items) or as anyone else might. Then what WsGateway::handle
// does with it: wire::parse_encoding on the encoding and json::parse on the
// params (params whose escapes do not decode are flagged, and refused). Checks: nothing throws or crashes; the fields hold no ',' and no
// outer blanks; the header the client would write for the parsed fields
// (percent-encoding the decoded ones) parses back to the same fields; params
// that parse as JSON arrive unchanged when a client sends them.
#include "base/value/json.hpp"
#include "engine-api/http.hpp"
#include "gateway/codec/wire.hpp"
#include "gateway/ws_protocols.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace anvil;
using namespace anvil::gateway;

namespace {

bool same(const WsProtocols& a, const WsProtocols& b) {
  return a.rivet == b.rivet && a.encoding == b.encoding && a.target == b.target && a.actor_id == b.actor_id &&
         a.token == b.token && a.skip_ready_wait == b.skip_ready_wait && a.conn_params == b.conn_params &&
         a.conn_params_malformed == b.conn_params_malformed;
}

// The header in rivetkit's client order (client-protocol.md §6.1).
std::string canonical(const WsProtocols& p) {
  std::string h;
  auto item = [&](std::string_view s) {
    if (!h.empty()) h += ',';
    h += s;
  };
  if (p.rivet) item("rivet");
  if (p.encoding) item("rivet_encoding." + *p.encoding);
  if (p.target) item("rivet_target." + *p.target);
  if (p.actor_id) item("rivet_actor." + http::percent_encode(*p.actor_id));
  if (p.token) item("rivet_token." + http::percent_encode(*p.token));
  if (p.skip_ready_wait) item("rivet_skip_ready_wait");
  if (p.conn_params) item("rivet_conn_params." + http::percent_encode(*p.conn_params));
  if (p.conn_params_malformed) item("rivet_conn_params.%");
  return h;
}

void check_raw_field(const std::optional<std::string>& f) {
  if (!f) return;
  FUZZ_CHECK(f->find(',') == std::string::npos, *f);
  FUZZ_CHECK(f->empty() || (f->back() != ' ' && f->back() != '\t'), *f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::run([&] {
    std::string_view header = fuzz::text({data, size});
    WsProtocols p = parse_ws_protocols(header);
    check_raw_field(p.encoding);
    check_raw_field(p.target);
    // Params are text to parse, absent (none or empty), or malformed: never two.
    FUZZ_CHECK(!(p.conn_params && (p.conn_params->empty() || p.conn_params_malformed)));

    // What the gateway does next: the encoding (default json) is one of
    // three or the socket closes 1003; the params are JSON or the upgrade
    // is refused with actor.invalid_request.
    if (auto enc = wire::parse_encoding(p.encoding.value_or("json")))
      FUZZ_CHECK(wire::parse_encoding(wire::encoding_name(*enc)) == enc);
    if (p.conn_params) {
      auto v = json::parse(*p.conn_params);
      if (!v.ok()) {
        fuzz::check_invalid_request(v.error());
      } else if (fuzz::json_exact(*v)) {
        // A client sends encodeURIComponent(JSON.stringify(params)).
        WsProtocols sent;
        sent.rivet = true;
        sent.conn_params = json::dump(*v);
        auto got = parse_ws_protocols(canonical(sent));
        FUZZ_CHECK(got.conn_params.has_value());
        auto back = json::parse(*got.conn_params);
        FUZZ_CHECK(back.ok() && *back == *v, *got.conn_params);
      }
    }

    std::string again = canonical(p);
    WsProtocols q = parse_ws_protocols(again);
    FUZZ_CHECK(same(p, q), again);
    FUZZ_CHECK(canonical(q) == again, again);
  });
}
