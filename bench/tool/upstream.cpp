#include "bench/tool/upstream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "bench/tool/lean_parser.hpp"
#include "common/address.hpp"

namespace vane::bench {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

asio::awaitable<void> serve(tcp::socket socket, const std::string& response) {
  boost::beast::flat_buffer buffer;
  socket.set_option(tcp::no_delay(true));
  for (;;) {
    lean_parser<true> parser;
    parser.body_limit(boost::none);
    auto [ec, n] = co_await http::async_read(socket, buffer, parser, nothrow);
    if (ec) co_return;
    auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(response), nothrow);
    if (wec || !parser.keep_alive()) co_return;
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, const std::string& response) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), response), asio::detached);
  }
}

}  // namespace

int run_upstream(const upstream_options& o) {
  auto hp = parse_host_port(o.listen);
  boost::system::error_code ec;
  auto address = hp ? asio::ip::make_address(hp->host, ec) : asio::ip::address();
  if (!hp || ec) {
    std::fprintf(stderr, "vane-bench upstream: --listen must be IP:PORT, got '%s'\n", o.listen.c_str());
    return 2;
  }
  std::string body(o.body_bytes, 'x');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  const std::string response =
      "HTTP/1.1 200 OK\r\nServer: vane-bench\r\nContent-Type: text/plain\r\nx-version: " + o.version +
      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  // One acceptor per thread on the same port (SO_REUSEPORT), each with its own io_context.
  unsigned threads = std::max(1u, o.threads);
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::uint16_t port = hp->port;
  for (unsigned t = 0; t < threads; ++t) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    auto a = std::make_unique<tcp::acceptor>(*contexts.back());
    tcp::endpoint ep(address, port);
    a->open(ep.protocol());
    a->set_option(tcp::acceptor::reuse_address(true));
    int one = 1;
    ::setsockopt(a->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    a->bind(ep, ec);
    if (ec) {
      std::fprintf(stderr, "vane-bench upstream: cannot listen on %s: %s\n", o.listen.c_str(), ec.message().c_str());
      return 1;
    }
    a->listen(asio::socket_base::max_listen_connections);
    port = a->local_endpoint().port();  // the OS's pick, shared by the other threads
    asio::co_spawn(*contexts.back(), accept_loop(*a, response), asio::detached);
    acceptors.push_back(std::move(a));
  }
  asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    for (auto& c : contexts) c->stop();
  });
  std::printf("vane-bench upstream listening on %s:%u\n", address.to_string().c_str(), port);
  std::fflush(stdout);
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back([&, t] { contexts[t]->run(); });
  contexts[0]->run();
  for (auto& c : contexts) c->stop();
  for (auto& t : pool) t.join();
  return 0;
}

}  // namespace vane::bench
