#include "proxy/exchange.hpp"

namespace vane::proxy {

task<relay_status> buffered_body::next() {
  ready_ = true;
  co_return relay_status::ok;
}

relay_progress relay_now(body_source& in, body_sink& out) {
  for (;;) {
    if (!in.ready()) {
      // What is already received goes without waiting (a bodiless request,
      // a small response that came with its head).
      std::optional<relay_status> status = in.poll();
      if (!status) return {};
      if (*status != relay_status::ok) return {status};
    }
    const bool last = in.done();
    if (last && !in.trailers().empty()) out.trailers(in.trailers());
    switch (out.put(in.pieces(), last)) {
      case body_sink::put_result::failed:
        return {relay_status::write_failed};
      case body_sink::put_result::pending:
        return {std::nullopt, true, last};
      case body_sink::put_result::written:
        break;
    }
    in.consume();
    if (last) return {relay_status::ok};
  }
}

task<relay_status> relay(body_source& in, body_sink& out, std::optional<relay_progress> progress) {
  relay_progress from = progress ? *progress : relay_now(in, out);
  for (;;) {
    if (from.status) co_return *from.status;
    if (from.flush) {
      if (!co_await out.flush()) co_return relay_status::write_failed;
      // Whether the batch ended the body is what it was put as: a source may
      // have learnt of its end meanwhile (an HTTP/2 END_STREAM with no data,
      // trailers), and that end still has to be put.
      in.consume();
      if (from.last) co_return relay_status::ok;
    } else if (!in.ready()) {
      const relay_status status = co_await in.next();
      if (status != relay_status::ok) co_return status;
    }
    from = relay_now(in, out);
  }
}

task<relay_status> drain(body_source& in) {
  for (;;) {
    std::optional<relay_status> status = in.poll();
    if (!status) status = co_await in.next();
    if (*status != relay_status::ok) co_return *status;
    const bool end = in.done();
    in.consume();
    if (end) co_return relay_status::ok;
  }
}

}  // namespace vane::proxy
