#pragma once
// gRPC calls for tests, through tests/support/grpc_client.py (Debian's
// python3-grpcio, generic calls, messages encoded by hand): to vane-demo
// directly or through vane-proxy. One run makes --calls calls and reports
// what came back, by status and by version.
#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace vane::test {

struct grpc_result {
  int exit_code = -1;
  std::string output;          // everything the client printed (for failure messages)
  boost::json::object report;  // its JSON line; empty when there was none

  bool ok() const { return exit_code == 0 && !report.empty(); }
  std::uint64_t calls() const;
  // Calls that ended with this status ("OK", "INTERNAL", ...).
  std::uint64_t status(const std::string& name) const;
  // Calls answered by this x-version (all statuses), and of those, with this status.
  std::uint64_t version(const std::string& v) const;
  std::uint64_t version_status(const std::string& v, const std::string& name) const;
  // Reply messages received, in all.
  std::uint64_t messages() const;
  // The first grpc-message seen with this status.
  std::string details(const std::string& name) const;
};

// Runs the client against `target` (HOST:PORT) with these arguments
// (e.g. {"--method", "echo", "--calls", "100"}).
grpc_result grpc_calls(const std::string& target, const std::vector<std::string>& args);

// True when python3 can import grpc (Debian's python3-grpcio; scripts/setup.sh installs it).
bool grpcio_available();

}  // namespace vane::test
