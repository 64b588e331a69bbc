// vane-demo's gRPC service (demo/demo.proto), on the HTTP/2 streams of
// h2_server.cpp.
//
// The protobuf messages are encoded and decoded by hand (varints and
// length-delimited fields, below) instead of with libgrpc++ and protoc: the
// messages are four tiny ones, so there is no generated code to keep in step
// with a compiler, no gRPC C++ library to compile against (a large part of a
// build's time) or to link, and the demo keeps control of every frame it
// sends — which it needs to fail calls exactly as a test asks (a status in a
// Trailers-Only response with HTTP 200, a reset stream), where a gRPC server
// library would decide for it.
#include "demo/grpc_service.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace vane::demo {

namespace asio = boost::asio;

namespace {

// gRPC status codes used here.
enum code : int {
  ok = 0,
  cancelled = 1,
  invalid_argument = 3,
  not_found = 5,
  resource_exhausted = 8,
  unimplemented = 12,
  internal = 13,
};

// ---- protobuf, by hand ----

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_bytes_field(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_varint(out, (std::uint64_t{field} << 3) | 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_varint_field(std::string& out, std::uint32_t field, std::uint64_t v) {
  put_varint(out, std::uint64_t{field} << 3);
  put_varint(out, v);
}

// The fields of a message one by one; unknown fields are skipped, as
// protobuf does. Malformed input (a truncated field, a varint past 10 bytes,
// field number 0, the group wire types) ends it with bad() true.
class pb_reader {
 public:
  explicit pb_reader(std::string_view in) : in_(in) {}
  struct field {
    std::uint32_t number = 0;
    std::uint32_t wire = 0;
    std::uint64_t varint = 0;  // wire type 0
    std::string_view bytes;    // wire type 2
  };
  bool next(field& f) {
    if (at_ == in_.size() || bad_) return false;
    std::uint64_t key = 0;
    if (!varint(key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return fail();
    f = {static_cast<std::uint32_t>(key >> 3), static_cast<std::uint32_t>(key & 7), 0, {}};
    switch (f.wire) {
      case 0:
        return varint(f.varint) || fail();
      case 1:
        return skip(8);
      case 2: {
        std::uint64_t len = 0;
        if (!varint(len) || len > in_.size() - at_) return fail();
        f.bytes = in_.substr(at_, static_cast<std::size_t>(len));
        at_ += static_cast<std::size_t>(len);
        return true;
      }
      case 5:
        return skip(4);
      default:
        return fail();
    }
  }
  bool bad() const { return bad_; }

 private:
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 70 && at_ < in_.size(); shift += 7) {
      const auto byte = static_cast<unsigned char>(in_[at_++]);
      v |= std::uint64_t{byte & 0x7fU} << shift;
      if (!(byte & 0x80)) return true;
    }
    return false;
  }
  bool skip(std::size_t n) {
    if (n > in_.size() - at_) return fail();
    at_ += n;
    return true;
  }
  bool fail() {
    bad_ = true;
    return false;
  }
  std::string_view in_;
  std::size_t at_ = 0;
  bool bad_ = false;
};

// The string field `number` of a message (its last occurrence, as protobuf
// merges); nullopt when the message is malformed or the field is not a string.
std::optional<std::string_view> string_field(std::string_view message, std::uint32_t number) {
  pb_reader r(message);
  pb_reader::field f;
  std::string_view value;
  while (r.next(f)) {
    if (f.number != number) continue;
    if (f.wire != 2) return std::nullopt;
    value = f.bytes;
  }
  if (r.bad()) return std::nullopt;
  return value;
}

// CountRequest.count (int32: a negative one is sign-extended to 64 bits on the wire).
std::optional<std::int64_t> count_field(std::string_view message) {
  pb_reader r(message);
  pb_reader::field f;
  std::int64_t value = 0;
  while (r.next(f)) {
    if (f.number != 1) continue;
    if (f.wire != 0) return std::nullopt;
    value = static_cast<std::int32_t>(static_cast<std::uint32_t>(f.varint));
  }
  if (r.bad()) return std::nullopt;
  return value;
}

std::string echo_reply(std::string_view message, std::string_view version) {
  std::string m;
  if (!message.empty()) put_bytes_field(m, 1, message);
  put_bytes_field(m, 2, version);
  return m;
}

// ---- gRPC framing ----

// A message with its 5-byte prefix: not compressed, big-endian length.
std::string frame(std::string_view message) {
  std::string out;
  out.reserve(5 + message.size());
  out.push_back('\0');
  const auto n = static_cast<std::uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(message);
  return out;
}

struct unframed {
  int status = ok;
  std::string error;
  std::string_view message;
};

// The one request message of a unary or server-streaming call.
unframed the_message(std::string_view body) {
  if (body.size() < 5) return {internal, "the request has no complete message", {}};
  const auto flag = static_cast<unsigned char>(body[0]);
  std::uint32_t len = 0;
  for (std::size_t i = 1; i < 5; ++i) len = (len << 8) | static_cast<unsigned char>(body[i]);
  if (flag == 1) return {unimplemented, "compressed messages are not supported", {}};
  if (flag != 0) return {internal, "bad message flag", {}};
  if (len > body.size() - 5) return {internal, "the request message is truncated", {}};
  if (len < body.size() - 5) return {internal, "more than one request message for a unary request", {}};
  return {ok, {}, body.substr(5)};
}

// grpc-message is percent-encoded (gRPC's PROTOCOL-HTTP2.md): bytes outside
// printable ASCII, and '%'.
std::string percent_encode(std::string_view text) {
  std::string out;
  constexpr const char* hex = "0123456789ABCDEF";
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b > 0x7e || b == '%') {
      out.push_back('%');
      out.push_back(hex[b >> 4]);
      out.push_back(hex[b & 15]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ---- a call's answer ----

class call {
 public:
  call(state& st, h2_response& out) : st_(st), out_(out) {}

  // The response headers of a call that will send messages.
  void start() {
    out_.head(200, {{"content-type", "application/grpc"}, {"x-version", st_.s.version}}, false);
    started_ = true;
  }

  asio::awaitable<bool> send(std::string_view message) {
    const std::string framed = frame(message);
    const bool sent = co_await out_.write(framed);
    if (!sent) count(cancelled);
    co_return sent;
  }

  // The status: in trailers after the messages, or alone (Trailers-Only:
  // one HEADERS frame, :status 200, with grpc-status) when none was sent.
  asio::awaitable<void> finish(int status, std::string_view message = {}) {
    const char digits[3] = {static_cast<char>('0' + status / 10), static_cast<char>('0' + status % 10), '\0'};
    const std::string_view code = status < 10 ? std::string_view(digits + 1, 1) : std::string_view(digits, 2);
    const std::string encoded = percent_encode(message);
    header_list trailers{{"grpc-status", code}};
    if (!encoded.empty()) trailers.emplace_back("grpc-message", encoded);
    if (!started_) {
      header_list all{{"content-type", "application/grpc"}, {"x-version", st_.s.version}};
      all.insert(all.end(), trailers.begin(), trailers.end());
      out_.head(200, all, true);
      trailers.clear();
    }
    const bool sent = co_await out_.end(trailers);
    count(sent ? status : cancelled);
  }

  bool gone() const { return out_.gone(); }
  void reset() { out_.reset(); }
  // A call that ends without a status (the client went, or it was reset).
  void count(int status) {
    if (!counted_) ++st_.grpc_status[std::string(grpc_code_name(status))];
    counted_ = true;
  }

 private:
  state& st_;
  h2_response& out_;
  bool started_ = false;
  bool counted_ = false;
};

enum class method { echo, count, check, watch, unknown };

method method_of(std::string_view path) {
  if (path == "/vane.demo.v1.Demo/Echo") return method::echo;
  if (path == "/vane.demo.v1.Demo/Count") return method::count;
  if (path == "/grpc.health.v1.Health/Check") return method::check;
  if (path == "/grpc.health.v1.Health/Watch") return method::watch;
  return method::unknown;
}

bool known_service(std::string_view service) { return service.empty() || service == "vane.demo.v1.Demo"; }

// HealthCheckResponse{status}: SERVING = 1, SERVICE_UNKNOWN = 3 (for Watch).
std::string health_reply(int serving_status) {
  std::string m;
  put_varint_field(m, 1, static_cast<std::uint64_t>(serving_status));
  return m;
}

}  // namespace

asio::awaitable<void> serve_grpc(state& st, const grpc_request& req, h2_response& out) {
  call c(st, out);
  const method m = method_of(req.path);
  if (m == method::unknown) {
    const std::string why = "unknown method " + std::string(req.path);
    co_await c.finish(unimplemented, why);
    co_return;
  }
  if (m == method::echo || m == method::count) {
    const std::uint64_t n = st.grpc_calls++;
    if (st.s.latency.count() > 0) {
      const auto latency = st.s.latency;
      co_await out.pause(latency);
      if (c.gone()) {
        c.count(cancelled);
        co_return;
      }
    }
    if (st.s.reset_percent > 0 && pick(n, st.s.reset_percent)) {
      ++st.resets;
      c.reset();
      co_return;
    }
    if (st.s.error_percent > 0 && pick(n, st.s.error_percent)) {
      ++st.grpc_errors;
      co_await c.finish(st.s.grpc_error_status, "injected failure");
      co_return;
    }
  }
  if (req.too_large) {
    co_await c.finish(resource_exhausted, "the request message is larger than 4 MiB");
    co_return;
  }
  const unframed in = the_message(req.body);
  if (in.status != ok) {
    co_await c.finish(in.status, in.error);
    co_return;
  }
  switch (m) {
    case method::echo: {
      const auto message = string_field(in.message, 1);
      if (!message) {
        co_await c.finish(internal, "cannot parse EchoRequest");
        co_return;
      }
      c.start();
      const std::string reply = echo_reply(*message, st.s.version);
      if (!co_await c.send(reply)) co_return;
      co_await c.finish(ok);
      co_return;
    }
    case method::count: {
      const auto count = count_field(in.message);
      if (!count) {
        co_await c.finish(internal, "cannot parse CountRequest");
        co_return;
      }
      if (*count < 0 || *count > max_count) {
        co_await c.finish(invalid_argument, "count must be from 0 to 10000");
        co_return;
      }
      c.start();
      for (std::int64_t i = 1; i <= *count; ++i) {
        const std::string text = std::to_string(i);
        const std::string reply = echo_reply(text, st.s.version);
        if (!co_await c.send(reply)) co_return;
      }
      co_await c.finish(ok);
      co_return;
    }
    case method::check:
    case method::watch: {
      const auto service = string_field(in.message, 1);
      if (!service) {
        co_await c.finish(internal, "cannot parse HealthCheckRequest");
        co_return;
      }
      const bool known = known_service(*service);
      if (m == method::check && !known) {
        co_await c.finish(not_found, "unknown service");
        co_return;
      }
      c.start();
      const std::string reply = health_reply(known ? 1 : 3);
      if (!co_await c.send(reply)) co_return;
      if (m == method::check) {
        co_await c.finish(ok);
        co_return;
      }
      // Watch: the status never changes; the stream stays open until the client cancels it.
      co_await out.wait_gone();
      c.count(cancelled);
      co_return;
    }
    case method::unknown:
      break;
  }
}

}  // namespace vane::demo
