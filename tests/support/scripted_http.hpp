#pragma once
// A scripted HTTP/1.1 server on 127.0.0.1 (a port the OS picks) for tests that
// play a peer answering badly: each request is passed to a handler that says
// what to send back — any bytes (a truncated body, an HTML page, a 3xx), after
// an optional delay, or nothing at all before closing. One request per
// connection, a thread per connection; the destructor stops everything.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace vane::test {

struct scripted_request {
  std::string method, target, body;
};

struct scripted_reply {
  std::string bytes;                   // written as is (see http_reply for a well-formed one)
  std::chrono::milliseconds delay{0};  // before anything is written
  bool close_without_answer = false;   // reads the request, then closes
  bool reset_after = false;            // closes with a reset (SO_LINGER 0) instead of a FIN
};

// A well-formed response with Content-Length and Connection: close.
scripted_reply http_reply(int status, const std::string& body, const std::string& content_type = "application/json",
                          const std::string& extra_headers = "");

class scripted_http_server {
 public:
  using handler = std::function<scripted_reply(const scripted_request&)>;
  explicit scripted_http_server(handler h);
  ~scripted_http_server();
  scripted_http_server(const scripted_http_server&) = delete;
  scripted_http_server& operator=(const scripted_http_server&) = delete;
  std::uint16_t port() const;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  int requests() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace vane::test
