#include "gateway/traffic.hpp"

namespace anvil::gateway {

Traffic::Traffic()
    : bytes(registry.counter("anvil_gateway_bytes_total",
                             "Bytes of request and response bodies (HTTP) and message payloads (WebSocket).",
                             {"direction", "transport"})),
      requests(registry.counter("anvil_http_requests_total", "HTTP requests answered, by status class.", {"code"})),
      ws_open(registry.gauge("anvil_websocket_connections_open",
                             "WebSocket connections open (client protocol and raw).")),
      ws_messages(registry.counter("anvil_websocket_messages_total", "WebSocket messages, by direction.",
                                   {"direction"})),
      http_in(bytes.with({"in", "http"})),
      http_out(bytes.with({"out", "http"})),
      ws_in(bytes.with({"in", "websocket"})),
      ws_out(bytes.with({"out", "websocket"})),
      websockets(ws_open.with({})),
      ws_messages_in(ws_messages.with({"in"})),
      ws_messages_out(ws_messages.with({"out"})) {
  for (const char* c : {"2xx", "3xx", "4xx", "5xx"}) requests.with({c});
}

void Traffic::count_response(int status) {
  static const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  const int cls = status / 100;
  requests.with({cls >= 1 && cls <= 5 ? kClasses[cls - 1] : "5xx"}).inc();
}

Traffic& traffic() {
  static Traffic* t = new Traffic();  // never destroyed: sessions may outlive main's objects
  return *t;
}

std::string connection_metrics(size_t open, uint64_t refused, uint64_t accept_failures) {
  return "# HELP anvil_http_connections_open Client connections open (HTTP and WebSocket).\n"
         "# TYPE anvil_http_connections_open gauge\n"
         "anvil_http_connections_open " +
         std::to_string(open) +
         "\n# HELP anvil_http_connections_refused_total Connections refused at --max-connections.\n"
         "# TYPE anvil_http_connections_refused_total counter\n"
         "anvil_http_connections_refused_total " +
         std::to_string(refused) +
         "\n# HELP anvil_http_accept_failures_total Failed accepts (EMFILE and the like).\n"
         "# TYPE anvil_http_accept_failures_total counter\n"
         "anvil_http_accept_failures_total " +
         std::to_string(accept_failures) + "\n";
}

}  // namespace anvil::gateway
