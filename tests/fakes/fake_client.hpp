// A blocking HTTP client for the fakes' own tests: one request, any status
// back (no retries), on a private io_context.
#pragma once

#include <future>
#include <optional>
#include <string>
#include <thread>

#include "base/net/http_client.hpp"
#include "base/value/json.hpp"

namespace anvil::fakes::client {

struct Reply {
  int status = 0;  // 0: no HTTP answer (error says why)
  std::string body;
  Value json;
  std::string error;
};

class BlockingClient {
 public:
  BlockingClient() : client_(io_) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~BlockingClient() {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  Reply send(std::string method, std::string url, std::string body = "", net::Headers headers = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    net::HttpRequest req;
    req.method = std::move(method);
    req.url = std::move(url);
    req.body = std::move(body);
    req.headers = std::move(headers);
    req.retry.max_attempts = 1;
    req.total_timeout = timeout;
    auto res = asio::co_spawn(io_, client_.request(std::move(req)), asio::use_future).get();
    Reply out;
    if (res.ok()) {
      out.status = res->status;
      out.body = res->body;
    } else if (res.error().metadata && res.error().metadata->find("status")) {
      out.status = static_cast<int>(res.error().metadata->find("status")->as_int());
      if (const Value* b = res.error().metadata->find("body"); b && b->is_string()) out.body = b->as_string();
    } else {
      out.error = res.error().qualified() + ": " + res.error().message;
    }
    auto parsed = json::parse(out.body, false);
    if (parsed.ok()) out.json = *parsed;
    return out;
  }

  // Opens an event stream; on_event runs on the client's thread. The future
  // completes when the stream ends.
  std::future<Result<net::HttpResponse>> stream(std::string url, std::function<void(const net::SseEvent&)> on_event) {
    net::HttpRequest req;
    req.url = std::move(url);
    req.retry.max_attempts = 1;
    req.total_timeout = std::chrono::seconds(10);
    return asio::co_spawn(io_, client_.stream(std::move(req), std::move(on_event)), asio::use_future);
  }

 private:
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  net::HttpClient client_;
  std::thread thread_;
};

}  // namespace anvil::fakes::client
