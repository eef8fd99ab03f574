#include "tools/cli_http.hpp"

#include <future>

namespace anvil::tools {
namespace {

asio::awaitable<Result<net::HttpResponse>> send(net::HttpClient* client, net::HttpRequest req) {
  co_return co_await client->request(std::move(req));
}

}  // namespace

Result<net::HttpResponse> request_once(net::HttpRequest req, const std::string& ca_file) {
  req.retry.max_attempts = 1;
  asio::io_context io;
  net::ClientOptions opts;
  opts.ca_file = ca_file;
  net::HttpClient client(io, std::move(opts));
  auto fut = asio::co_spawn(io, send(&client, std::move(req)), asio::use_future);
  io.run();
  return fut.get();
}

}  // namespace anvil::tools
