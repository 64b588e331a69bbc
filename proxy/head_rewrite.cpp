#include "proxy/head_rewrite.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

namespace vane::proxy {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

bool hop_by_hop(http::field name) {
  switch (name) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
      return true;
    default:
      return false;
  }
}

// Fields that decide how a message is framed or where it goes. A Connection
// token naming one of them is ignored, as nginx and HAProxy do: the message
// was framed and routed by these fields as sent, and erasing them on the way
// out would make the next hop frame it differently (a body becoming a second
// request). Transfer-Encoding is hop-by-hop anyway and re-made by the proxy.
bool framing_or_routing(std::string_view name) {
  return beast::iequals(name, "content-length") || beast::iequals(name, "host") ||
         beast::iequals(name, "transfer-encoding");
}

}  // namespace

void remove_hop_by_hop(http::fields& f) {
  // The fixed ones in one walk; Connection stays until its tokens are read.
  bool connection = false;
  for (auto it = f.begin(); it != f.end();) {
    const http::field name = it->name();
    if (name == http::field::connection) {
      connection = true;
      ++it;
    } else if (hop_by_hop(name)) {
      it = f.erase(it);
    } else {
      ++it;
    }
  }
  if (!connection) return;
  // The fields Connection names (rare beyond close and keep-alive, which name
  // no field: keep-alive's is gone already).
  for (auto it = f.find(http::field::connection); it != f.end() && it->name() == http::field::connection; ++it) {
    for (auto token : http::token_list(it->value())) {
      const std::string_view name(token.data(), token.size());
      if (!beast::iequals(name, "close") && !beast::iequals(name, "keep-alive") &&
          !beast::iequals(name, "connection") && !framing_or_routing(name))
        f.erase(name);
    }
  }
  f.erase(http::field::connection);
}

void forwarded_fields::rewrite(http::fields& f, std::string_view client_ip, std::string_view proto,
                               bool trust_incoming) {
  static constexpr std::string_view xff_name = "x-forwarded-for: ";
  lines_.assign(xff_name);
  via_.clear();
  bool proto_kept = false;
  for (auto it = f.begin(); it != f.end();) {
    if (it->name() == http::field::via) {
      via_.append(it->value()).append(", ");
      it = f.erase(it);
      continue;
    }
    if (it->name() == http::field::unknown) {
      const auto name = it->name_string();
      if (beast::iequals(name, "x-forwarded-for")) {
        // Several fields are one comma-separated list (RFC 9110 §5.3), in order.
        if (trust_incoming) lines_.append(it->value()).append(", ");
        it = f.erase(it);
        continue;
      }
      if (beast::iequals(name, "x-forwarded-proto")) {
        if (trust_incoming) {
          proto_kept = true;
          ++it;
        } else {
          it = f.erase(it);
        }
        continue;
      }
    }
    ++it;
  }
  lines_.append(client_ip).append("\r\n");
  xff_end_ = lines_.size();
  if (!proto_kept) lines_.append("x-forwarded-proto: ").append(proto).append("\r\n");
  xfp_end_ = lines_.size();
  lines_.append("Via: ").append(via_).append("1.1 vane\r\n");
}

void forwarded_fields::set_on(http::fields& f) const {
  const std::string_view all(lines_);
  const auto value = [&](std::size_t begin, std::size_t end, std::string_view name) {
    return all.substr(begin + name.size(), end - begin - name.size() - 2);
  };
  f.set("x-forwarded-for", value(0, xff_end_, "x-forwarded-for: "));
  if (xfp_end_ > xff_end_) f.set("x-forwarded-proto", value(xff_end_, xfp_end_, "x-forwarded-proto: "));
  f.set(http::field::via, value(xfp_end_, all.size(), "Via: "));
}

}  // namespace vane::proxy
