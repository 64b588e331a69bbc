#include "proxy/server.hpp"

#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "common/listen.hpp"
#include "common/log.hpp"

namespace vane::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

server::server(const std::shared_ptr<const route_table>& table, std::size_t workers) : stats_(workers) {
  for (std::size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<worker>(i, table, stats_));
}

server::~server() { stop(); }

void server::set_access_log(access_logger& log) {
  for (auto& w : workers_) w->set_access_log(&log.ring(w->id()));
}

std::vector<listening_socket> server::make_acceptors(const compiled_listener& l, std::string& bound, bool probe) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(l.address.host, ec);
  if (ec) throw std::runtime_error(fmt::format("listener {}: '{}' is not an IP address", l.name, l.address.host));
  tcp::endpoint endpoint(address, l.address.port);
  if (probe && endpoint.port() != 0) {
    // A socket without SO_REUSEPORT cannot bind a port another socket listens on, with it or without: "in
    // use", as nginx and Envoy say, instead of a port shared with another process. (Bound, never listening:
    // it takes no connection.) A plain socket: an Asio one would be registered with a running worker's
    // event loop, whose per-socket locks are off, from this thread.
    const int fd = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = fd < 0 ? errno : 0;
    const int on = 1;
    if (err == 0 && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) err = errno;
    if (err == 0 && ::bind(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0) err = errno;
    if (fd >= 0) ::close(fd);
    if (err != 0)
      throw std::runtime_error(fmt::format("listener {}: cannot listen on {}: {}", l.name, l.address.to_string(),
                                           std::generic_category().message(err)));
  }
  std::vector<listening_socket> out;
  out.reserve(workers_.size());  // (no allocation between a release and its emplace)
  // Made in an event loop that never runs, and taken out of it: each joins its
  // worker's loop on that worker's thread (listening_socket).
  asio::io_context staging(1);
  // With port 0 the first socket gets a port from the OS and the other
  // workers bind that same port, so the kernel spreads connections over all.
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    tcp::acceptor acceptor = listen_on(staging.get_executor(), endpoint, true, ec);
    if (!ec) endpoint = acceptor.local_endpoint(ec);
    const int fd = ec ? -1 : acceptor.release(ec);
    if (ec)
      throw std::runtime_error(
          fmt::format("listener {}: cannot listen on {}: {}", l.name, l.address.to_string(), ec.message()));
    out.emplace_back(fd, endpoint.protocol());
  }
  bound = host_port{endpoint.address().to_string(), endpoint.port()}.to_string();
  return out;
}

std::string server::bind(const compiled_listener& l, bool probe) {
  std::string bound;
  unstarted_.emplace_back(l.name, make_acceptors(l, bound, probe));
  return bound;
}

void server::start() {
  for (auto& [name, acceptors] : unstarted_) {
    std::uint64_t id = next_listener_id_++;
    initial_ids_[name] = id;
    for (std::size_t i = 0; i < workers_.size(); ++i) workers_[i]->add_listener(name, id, std::move(acceptors[i]));
  }
  unstarted_.clear();
  for (auto& w : workers_) w->start();
}

void server::stop() {
  for (auto& w : workers_) w->stop();
}

asio::awaitable<void> server::on_each_worker(const worker_task& fn) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer done(ex, asio::steady_timer::time_point::max());
  std::size_t pending = workers_.size();
  for (auto& w : workers_) {
    asio::post(w->context(), [&, wp = w.get()] {
      fn(*wp);
      // Back on the control thread: the last worker wakes us.
      asio::post(ex, [&] {
        if (--pending == 0) done.cancel();
      });
    });
  }
  co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
}

server::prepared_listener server::prepare_listener(const compiled_listener& l, bool probe) {
  prepared_listener p;
  p.name = l.name;
  p.address = l.address;
  p.acceptors = make_acceptors(l, p.bound, probe);
  return p;
}

asio::awaitable<std::uint64_t> server::start_listener(prepared_listener p) {
  std::uint64_t id = next_listener_id_++;
  const worker_task add = [&](worker& w) { w.add_listener(p.name, id, std::move(p.acceptors[w.id()])); };
  co_await on_each_worker(add);
  co_return id;
}

asio::awaitable<void> server::close_listener(std::uint64_t id) {
  const worker_task close = [id](worker& w) { w.close_listener(id); };
  co_await on_each_worker(close);
}

std::uint64_t server::active_connections() const {
  std::uint64_t n = 0;
  for (const auto& w : workers_) n += w->active_connections();
  return n;
}

}  // namespace vane::proxy
