#pragma once
// The workers of the proxy and what the control thread does to them: binds
// listeners (one SO_REUSEPORT socket per worker and listener), hands them new
// route tables, drains and stops them. All methods are called on the control
// thread; work on a worker always runs on that worker's thread.
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/route_table.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {

class server {
 public:
  server(const std::shared_ptr<const route_table>& table, std::size_t workers);
  ~server();

  // Binds one socket per worker for the listener (port 0: the OS picks one,
  // and every worker shares it) and returns the bound address. Throws
  // std::runtime_error with a readable message when it cannot. Before start()
  // the sockets are handed over at start(); after, use open_listener().
  std::string bind(const compiled_listener& listener, bool probe = true);
  void start();
  void stop();

  // After start(): a listener is bound first (prepare: may throw, changes
  // nothing), then started on every worker; it is closed by the id start gave.
  struct prepared_listener {
    std::string name;
    host_port address;                        // as configured
    std::string bound;                        // as bound (port 0 resolved)
    std::vector<listening_socket> acceptors;  // one per worker
  };
  // `probe`: first check that no other socket holds the address (every worker's socket takes
  // SO_REUSEPORT, which would otherwise share the port with another process silently); false for a
  // port this process already listens on (a listener renamed or moved to another host by a reload, or
  // two listeners on one port and two hosts), whose own sockets would fail the probe.
  prepared_listener prepare_listener(const compiled_listener& listener, bool probe = true);
  boost::asio::awaitable<std::uint64_t> start_listener(prepared_listener listener);
  boost::asio::awaitable<void> close_listener(std::uint64_t id);
  // Ids of the listeners bound before start(), by name.
  const std::map<std::string, std::uint64_t>& initial_listener_ids() const { return initial_ids_; }
  // Runs fn on every worker's own thread and resumes when all have run it.
  // Callers pass a named function object: GCC 12 destroys a temporary that
  // stands in a co_await expression twice (a lambda holding a shared_ptr
  // then frees what it holds too early), so none may stand there.
  using worker_task = std::function<void(worker&)>;
  boost::asio::awaitable<void> on_each_worker(const worker_task& fn);
  std::uint64_t active_connections() const;
  std::size_t size() const { return workers_.size(); }
  const stats_store& stats() const { return stats_; }
  // Before start(): every worker queues access log lines into its ring of `log`.
  void set_access_log(access_logger& log);

 private:
  std::vector<listening_socket> make_acceptors(const compiled_listener& listener, std::string& bound, bool probe);
  stats_store stats_;  // before the workers: they hold pointers into it
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::pair<std::string, std::vector<listening_socket>>> unstarted_;
  std::map<std::string, std::uint64_t> initial_ids_;
  std::uint64_t next_listener_id_ = 1;
};

}  // namespace vane::proxy
