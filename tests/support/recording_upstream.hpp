#pragma once
// An HTTP/1.1 upstream for raw-socket tests that records every request it
// receives, whole (head and body, framed by Content-Length or chunked as an
// HTTP/1.1 server reads them), answers each with one scripted response and
// counts connections, requests and bytes. A response saying
// `Connection: close` is followed by the close (a close-delimited body).
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vane::test {

std::string lower(std::string s);

// Accepts connections on `acceptor` until it is closed (or shut down), each
// served by `serve` on a thread of its own and counted in `accepted`;
// returns once every connection's thread has ended. The loop of the test
// upstreams here and in tests/integration.
void serve_each_connection(boost::asio::ip::tcp::acceptor& acceptor, std::atomic<int>& accepted,
                           const std::function<void(boost::asio::ip::tcp::socket)>& serve);
// The value of field `name` in a head (first occurrence, OWS trimmed), or nullopt.
std::optional<std::string> head_field(const std::string& head, const std::string& name);

class recording_upstream {
 public:
  explicit recording_upstream(std::string response);
  ~recording_upstream();
  recording_upstream(const recording_upstream&) = delete;
  recording_upstream& operator=(const recording_upstream&) = delete;

  std::string address() const;
  std::vector<std::string> requests() const;
  std::size_t count() const;
  int connections() const { return connections_.load(); }
  // Every byte received, complete requests or not.
  std::size_t bytes() const { return bytes_.load(); }

 private:
  void run();
  void serve(boost::asio::ip::tcp::socket s);

  std::string response_;
  bool closes_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::atomic<std::size_t> bytes_{0};
  std::atomic<int> connections_{0};
};

// A config with one listener on a port the OS picks and one route splitting
// everything to cluster `c` with one endpoint.
std::string one_route_config(const std::string& endpoint);

}  // namespace vane::test
