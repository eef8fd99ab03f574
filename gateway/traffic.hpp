// The gateway's share of /metrics: bytes in and out, requests by status
// class, open WebSockets. One set per process (every server in it adds to
// the same counters); the node adds traffic().registry.text() and its HTTP
// server's connection counts to /metrics (tools/main.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "base/metrics/metrics.hpp"

namespace anvil::gateway {

struct Traffic {
  Traffic();
  metrics::Registry registry;
  // anvil_gateway_bytes_total{direction="in"|"out", transport="http"|"websocket"}:
  // request/response bodies and WebSocket message payloads.
  metrics::Family<metrics::Counter>& bytes;
  // anvil_http_requests_total{code="2xx"|"3xx"|"4xx"|"5xx"}
  metrics::Family<metrics::Counter>& requests;
  // anvil_websocket_connections_open
  metrics::Family<metrics::Gauge>& ws_open;
  // anvil_websocket_messages_total{direction}
  metrics::Family<metrics::Counter>& ws_messages;

  metrics::Counter& http_in;
  metrics::Counter& http_out;
  metrics::Counter& ws_in;
  metrics::Counter& ws_out;
  metrics::Gauge& websockets;
  metrics::Counter& ws_messages_in;
  metrics::Counter& ws_messages_out;

  void count_response(int status);
};

Traffic& traffic();

// The HTTP server's connection figures in exposition format.
std::string connection_metrics(size_t open, uint64_t refused, uint64_t accept_failures);

}  // namespace anvil::gateway
