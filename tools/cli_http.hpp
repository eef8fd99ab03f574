// One HTTP request from an operator command (anvil actors, anvil events):
// sent once — a command reports, it does not repeat — on an io_context of
// its own, blocking until the answer. A non-2xx answer is outbound.http_status
// with the body in its metadata (base/net/http_client.hpp).
#pragma once

#include "base/net/http_client.hpp"

namespace anvil::tools {

Result<net::HttpResponse> request_once(net::HttpRequest req);

}  // namespace anvil::tools
