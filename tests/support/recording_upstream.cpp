#include "tests/support/recording_upstream.hpp"

#include <sys/socket.h>

#include <boost/asio/write.hpp>

namespace vane::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<std::string> head_field(const std::string& head, const std::string& name) {
  const std::string h = lower(head), key = "\r\n" + lower(name) + ":";
  auto at = h.find(key);
  if (at == std::string::npos) return std::nullopt;
  auto begin = at + key.size();
  auto end = h.find("\r\n", begin);
  std::string v = head.substr(begin, end - begin);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  return v;
}

namespace {

// Where the request starting at `in` ends, or npos while incomplete.
std::size_t request_end(const std::string& in) {
  auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return std::string::npos;
  const std::string head = in.substr(0, head_end + 2);
  std::size_t body = head_end + 4;
  if (auto te = head_field(head, "transfer-encoding"); te && lower(*te).find("chunked") != std::string::npos) {
    auto last = in.find("\r\n0\r\n\r\n", body - 2);
    return last == std::string::npos ? std::string::npos : last + 7;
  }
  if (auto cl = head_field(head, "content-length")) {
    std::size_t n = std::stoul(*cl);
    return in.size() >= body + n ? body + n : std::string::npos;
  }
  return body;
}

}  // namespace

recording_upstream::recording_upstream(std::string response)
    : response_(std::move(response)), closes_(head_field(response_, "connection") == "close") {
  acceptor_.open(tcp::v4());
  acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
  acceptor_.listen();
  thread_ = std::thread([this] { run(); });
}

recording_upstream::~recording_upstream() {
  ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
  boost::system::error_code ec;
  acceptor_.close(ec);
  thread_.join();
}

std::string recording_upstream::address() const {
  return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
}

std::vector<std::string> recording_upstream::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::size_t recording_upstream::count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

void serve_each_connection(tcp::acceptor& acceptor, std::atomic<int>& accepted,
                           const std::function<void(tcp::socket)>& serve) {
  std::vector<std::thread> conns;
  for (;;) {
    boost::system::error_code ec;
    tcp::socket s(acceptor.get_executor());
    acceptor.accept(s, ec);
    if (ec) break;
    ++accepted;
    conns.emplace_back([&serve, s = std::move(s)]() mutable { serve(std::move(s)); });
  }
  for (auto& t : conns) t.join();
}

void recording_upstream::run() {
  serve_each_connection(acceptor_, connections_, [this](tcp::socket s) { serve(std::move(s)); });
}

void recording_upstream::serve(tcp::socket s) {
  timeval tv{30, 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string in;
  char buf[4096];
  for (;;) {
    if (auto end = request_end(in); end != std::string::npos) {
      {
        std::lock_guard lock(mu_);
        requests_.push_back(in.substr(0, end));
      }
      in.erase(0, end);
      boost::system::error_code wec;
      asio::write(s, asio::buffer(response_), wec);
      if (wec || closes_) return;  // a close-delimited answer ends with the close
      continue;
    }
    ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
    if (n <= 0) return;
    bytes_ += static_cast<std::size_t>(n);
    in.append(buf, static_cast<std::size_t>(n));
  }
}

std::string one_route_config(const std::string& endpoint) {
  return R"(
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: r
        split: [{cluster: c, weight: 1}]
clusters:
  - name: c
    endpoints: [)" +
         endpoint + "]\n";
}

}  // namespace vane::test
