// Test support for the gateway's socket tests: a blocking POSIX TCP client
// on 127.0.0.1 that can do what well-behaved clients do not (never read,
// stall half-way through headers, pipeline, hold sockets open).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace anvil::gateway::testing {

class RawClient {
 public:
  // An unconnected socket (connect() later), so that a test can create its
  // descriptors before it lowers RLIMIT_NOFILE.
  explicit RawClient(int rcvbuf = 0) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  RawClient(uint16_t port, int rcvbuf) : RawClient(rcvbuf) { connect(port); }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connect(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Writes without blocking until the kernel refuses more; returns the bytes taken.
  size_t send_until_full(std::string_view chunk, size_t max_total) {
    size_t total = 0;
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    while (total < max_total) {
      ssize_t n = ::send(fd_, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    return total;
  }

  enum class Read { Data, Closed, Timeout };
  // Appends what arrives within `timeout` to `out`.
  Read read_some(std::string& out, std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r == 0) return Read::Timeout;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return Read::Closed;  // EOF or reset
    out.append(buf, static_cast<size_t>(n));
    return Read::Data;
  }

  // Reads until the peer closes (true) or `timeout` passes (false).
  bool read_until_closed(std::string& out, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      auto r = read_some(out, left);
      if (r == Read::Closed) return true;
      if (r == Read::Timeout) return false;
    }
  }

  // Reads until `out` contains `marker` (true) or the peer closes / time runs out.
  bool read_until(std::string& out, std::string_view marker, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.find(marker) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || read_some(out, left) != Read::Data) return out.find(marker) != std::string::npos;
    }
    return true;
  }

 private:
  int fd_;
};

}  // namespace anvil::gateway::testing
