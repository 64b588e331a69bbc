#pragma once
// "host:port" and "[v6]:port" as written in configs and flags.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vane {

struct host_port {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
  std::string to_string() const;
  bool operator==(const host_port&) const = default;
};

// Port 0 is allowed (the OS chooses); a missing or out-of-range port is not.
std::optional<host_port> parse_host_port(std::string_view text);

struct http_url {
  std::string host;  // without brackets for IPv6
  std::string port = "80";
  std::string target = "/";  // path and query
};
// Parses http://HOST[:PORT][/PATH]; nullopt for anything else.
std::optional<http_url> parse_http_url(std::string_view url);

// RFC 3986 percent-encoding of everything but unreserved characters (for a query value).
std::string percent_encode(std::string_view s);

}  // namespace vane
