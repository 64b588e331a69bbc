#pragma once
// vane-demo's settings and counters, shared by its HTTP/1.1 and HTTP/2
// (h2c, gRPC) sides. One io_context thread: no locking.
#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/units.hpp"

namespace vane::demo {

struct settings {
  std::string version = "v1";
  int error_percent = 0;
  unsigned error_status = 500;
  int grpc_error_status = 13;  // INTERNAL
  int reset_percent = 0;
  vane::duration latency{0};
  std::uint32_t h2_max_streams = 100;  // SETTINGS_MAX_CONCURRENT_STREAMS (--h2-max-streams)
  std::uint32_t h2_goaway_after = 0;   // GOAWAY after this many streams on a connection (0: never)
};

struct state {
  settings s;
  std::uint64_t requests = 0;  // HTTP service requests (not /_demo/ or /healthz), both protocols
  std::uint64_t errors = 0;
  std::uint64_t resets = 0;  // connections reset (HTTP/1.1) or streams reset (HTTP/2)
  std::uint64_t connections_total = 0;
  std::uint64_t connections_active = 0;
  std::uint64_t service_connections = 0;  // connections whose first request was a service request
  std::uint64_t h2_connections = 0;       // connections that spoke HTTP/2 (h2c)
  std::uint64_t h2_goaways = 0;           // GOAWAYs sent by --h2-goaway-after
  std::uint64_t h2_refused = 0;           // streams refused (REFUSED_STREAM) after one, unprocessed
  std::uint64_t bytes_received = 0;
  std::uint64_t grpc_calls = 0;                      // calls to vane.demo.v1.Demo (failures are injected into these)
  std::uint64_t grpc_errors = 0;                     // of which failed by --error-percent
  std::map<std::string, std::uint64_t> grpc_status;  // every gRPC call answered, by its status's name
  std::string last_host;                             // Host of the last service request (mirror copies carry "-shadow")
  std::string last_body;  // first 4 KiB of the last service request with a body (webhook and alert payloads)
  std::string hostname;
};

// Exactly p of every 100: request n is picked when floor((n+1)p/100) > floor(np/100).
inline bool pick(std::uint64_t n, int percent) { return (n + 1) * percent / 100 > n * percent / 100; }

boost::json::object stats_json(const state& st);

// Applies a JSON config (PUT /_demo/config); on any error returns the message and changes nothing.
std::string apply_config(state& st, std::string_view body);

// gRPC status codes: the canonical name of 0..16 ("INTERNAL"), and a code from
// its number or its name in any case, '-' or '_' ("13", "internal", "deadline-exceeded").
std::string_view grpc_code_name(int code);
std::optional<int> parse_grpc_code(std::string_view text);

}  // namespace vane::demo
