#pragma once
// Blocking HTTP/1.1 client for tests (Beast, sync), one keep-alive connection
// per object, every operation bounded by a generous timeout.
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vane::test {

struct http_response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool keep_alive = true;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class http_client {
 public:
  explicit http_client(std::uint16_t port);
  ~http_client();
  http_response request(const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        const std::string& body = {});
  http_response get(const std::string& target) { return request("GET", target); }
  bool connected() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// One request on a fresh connection.
http_response fetch(std::uint16_t port, const std::string& method, const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers = {}, const std::string& body = {});
boost::json::value fetch_json(std::uint16_t port, const std::string& target);

// A raw TCP connection for byte-exact cases (Expect, HTTP/1.0, big streams).
class raw_connection {
 public:
  explicit raw_connection(std::uint16_t port);
  ~raw_connection();
  void send(const std::string& bytes);
  void send(const char* data, std::size_t n);
  // Reads until `needle` is in what was received, or EOF/timeout; returns everything received so far.
  std::string read_until(const std::string& needle);
  // Reads until the peer closes (or timeout).
  std::string read_all();
  // Half-closes: the peer reads EOF after what was sent.
  void shutdown_send();
  // Reads a response head and then exactly content-length body bytes, feeding them to `sink` (no buffering).
  int fd() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::string pending_;
};

}  // namespace vane::test
