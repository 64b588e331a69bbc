#pragma once
// The proxy process: binds the listeners (one SO_REUSEPORT socket per worker
// and listener), runs the workers, stops them.
#include <memory>
#include <string>
#include <vector>

#include "proxy/route_table.hpp"
#include "proxy/worker.hpp"

namespace vane::proxy {

class server {
 public:
  server(std::shared_ptr<const route_table> table, std::size_t workers);
  // Binds every listener on every worker. Throws std::runtime_error with a
  // readable message when an address cannot be bound.
  void bind();
  void start();
  void stop();
  // The bound address of each listener (port 0 resolved to the real port).
  const std::vector<std::string>& bound_addresses() const { return bound_; }

 private:
  std::shared_ptr<const route_table> table_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::string> bound_;
};

}  // namespace vane::proxy
