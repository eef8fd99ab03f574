// One HTTP request from an operator command (anvil actors, anvil events):
// sent once — a command reports, it does not repeat — on an io_context of
// its own, blocking until the answer. A non-2xx answer is outbound.http_status
// with the body in its metadata (base/net/http_client.hpp). `ca_file`: PEM
// certificates trusted on top of the system store (--ca-file, for a node
// whose certificate no public CA signed).
#pragma once

#include "base/net/http_client.hpp"

namespace anvil::tools {

Result<net::HttpResponse> request_once(net::HttpRequest req, const std::string& ca_file = {});

}  // namespace anvil::tools
