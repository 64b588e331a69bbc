#include "tests/support/scripted_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace vane::test {

scripted_reply http_reply(int status, const std::string& body, const std::string& content_type,
                          const std::string& extra_headers) {
  scripted_reply r;
  r.bytes = "HTTP/1.1 " + std::to_string(status) + " Scripted\r\nContent-Type: " + content_type +
            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" + extra_headers +
            "\r\n" + body;
  return r;
}

struct scripted_http_server::impl {
  handler h;
  int fd = -1;
  std::uint16_t port = 0;
  std::atomic<bool> stop{false};
  std::atomic<int> requests{0};
  std::thread acceptor;
  std::mutex mu;
  std::condition_variable cv;  // wakes delayed answers when stopping
  std::vector<std::thread> connections;

  void serve(int c) {
    timeval tv{10, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    char buf[4096];
    std::size_t head_end = std::string::npos;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) {
        ::close(c);
        return;
      }
      in.append(buf, static_cast<std::size_t>(n));
    }
    scripted_request req;
    std::string head = in.substr(0, head_end);
    auto sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    req.method = head.substr(0, sp1);
    req.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    std::size_t length = 0;
    std::string lower = head;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (auto at = lower.find("\r\ncontent-length:"); at != std::string::npos)
      length = std::stoul(lower.substr(at + 17, lower.find("\r\n", at + 2) - at - 17));
    req.body = in.substr(head_end + 4);
    while (req.body.size() < length) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      req.body.append(buf, static_cast<std::size_t>(n));
    }
    ++requests;
    scripted_reply reply = h(req);
    if (reply.delay.count() > 0) {
      std::unique_lock lock(mu);
      cv.wait_for(lock, reply.delay, [this] { return stop.load(); });
    }
    if (!reply.close_without_answer) {
      std::size_t sent = 0;
      while (sent < reply.bytes.size()) {
        ssize_t n = ::send(c, reply.bytes.data() + sent, reply.bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
    }
    if (reply.reset_after) {
      const linger abort{1, 0};
      ::setsockopt(c, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    } else {
      ::shutdown(c, SHUT_RDWR);
    }
    ::close(c);
  }

  void run() {
    while (!stop) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) continue;
      std::lock_guard lock(mu);
      connections.emplace_back([this, c] { serve(c); });
    }
  }
};

scripted_http_server::scripted_http_server(handler h) : impl_(std::make_unique<impl>()) {
  impl_->h = std::move(h);
  impl_->fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(impl_->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(impl_->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(impl_->fd, 64) != 0)
    throw std::runtime_error(std::string("scripted_http_server: ") + std::strerror(errno));
  socklen_t len = sizeof addr;
  ::getsockname(impl_->fd, reinterpret_cast<sockaddr*>(&addr), &len);
  impl_->port = ntohs(addr.sin_port);
  impl_->acceptor = std::thread([this] { impl_->run(); });
}

scripted_http_server::~scripted_http_server() {
  impl_->stop = true;
  impl_->cv.notify_all();
  impl_->acceptor.join();
  std::vector<std::thread> connections;
  {
    std::lock_guard lock(impl_->mu);
    connections.swap(impl_->connections);
  }
  impl_->cv.notify_all();
  for (auto& t : connections) t.join();
  ::close(impl_->fd);
}

std::uint16_t scripted_http_server::port() const { return impl_->port; }
int scripted_http_server::requests() const { return impl_->requests.load(); }

}  // namespace vane::test
