// The upstream pool with real loopback connections on one io_context: what a
// request waiting for a connection is handed when one is released.
#include "proxy/upstream_pool.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <string_view>

using namespace vane::proxy;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// A cluster of one endpoint (a listener of the test's) that allows one
// connection: a second request waits for the first's connection.
struct one_connection_pool {
  asio::io_context ioc;
  asio::basic_socket_acceptor<asio::ip::tcp, worker_executor> acceptor{
      ioc.get_executor(), asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  cluster_target cluster;
  std::optional<upstream_pool> pool;
  one_connection_pool() {
    cluster.name = "c";
    cluster.endpoints = {acceptor.local_endpoint()};
    cluster.connect_timeout = 5s;
    cluster.max_connections = 1;
    cluster.max_pending = 4;
    pool.emplace(ioc.get_executor(), cluster, std::chrono::milliseconds(60000));
  }
  ~one_connection_pool() { pool.reset(); }  // (its connections before the io_context)
  // Starts an acquire; `out` is set when it ends.
  void acquire(std::optional<lease>& out) {
    asio::co_spawn(ioc, pool->acquire(std::chrono::steady_clock::now() + 10s),
                   [&out](const std::exception_ptr& e, lease l) {
                     if (e) std::rethrow_exception(e);
                     out = std::move(l);
                   });
  }
  // Runs the io_context until `done`.
  template <class F>
  void run_until(F done) {
    ioc.restart();
    while (!done()) ioc.run_one();
  }
  // The upstream's side of the connection the pool opened last.
  worker_socket accept() {
    worker_socket far(ioc.get_executor());
    acceptor.accept(far);
    return far;
  }
  // `first` gets the one connection, `second` waits for it; returns the upstream's side of it.
  worker_socket first_holds_second_waits(std::optional<lease>& first, std::optional<lease>& second) {
    acquire(first);
    run_until([&] { return first.has_value(); });
    EXPECT_TRUE(first->conn);
    worker_socket far = accept();
    acquire(second);  // at the cap: waits
    ioc.restart();
    ioc.poll();
    EXPECT_FALSE(second.has_value());
    return far;
  }
};

// Whether `fd` has something to read within 10 s (bytes sent on loopback are there at once, in practice).
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 10000) == 1;
}

}  // namespace

TEST(UpstreamPool, AConnectionHandedToAWaitingRequestIsReusedWhenQuiet) {
  one_connection_pool t;
  std::optional<lease> first, second;
  worker_socket far = t.first_holds_second_waits(first, second);
  ASSERT_TRUE(first->conn && !second);
  upstream_connection* handed = first->conn.get();
  t.pool->release(std::move(first->conn), true);
  t.run_until([&] { return second.has_value(); });
  EXPECT_EQ(second->conn.get(), handed);
  EXPECT_TRUE(second->reused);
  EXPECT_EQ(t.pool->connections_created(), 1U);
}

// Bytes the upstream sent after its answer, read by no one yet, are never
// taken as the waiting request's answer: the connection is closed and a new
// one opened, as for a reuse from the idle list.
TEST(UpstreamPool, AConnectionWithUnreadBytesIsNotHandedToAWaitingRequest) {
  for (const bool close_instead : {false, true}) {
    SCOPED_TRACE(close_instead ? "the upstream closed it" : "stray bytes");
    one_connection_pool t;
    std::optional<lease> first, second;
    worker_socket far = t.first_holds_second_waits(first, second);
    ASSERT_TRUE(first->conn && !second);
    if (close_instead) {
      far.close();
    } else {
      constexpr std::string_view stray = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil";
      asio::write(far, asio::buffer(stray.data(), stray.size()));
    }
    ASSERT_TRUE(readable(first->conn->stream.socket().native_handle()));
    t.pool->release(std::move(first->conn), true);
    t.run_until([&] { return second.has_value(); });
    ASSERT_TRUE(second->conn);
    EXPECT_FALSE(second->reused);
    EXPECT_EQ(t.pool->connections_created(), 2U);
    EXPECT_EQ(second->conn->buffer.size(), 0U);
    t.pool->release(std::move(second->conn), false);
  }
}
