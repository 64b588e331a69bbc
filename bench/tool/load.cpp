#include "bench/tool/load.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <cerrno>
#include <memory>
#include <thread>

#include "bench/tool/lean_parser.hpp"
#include "common/metrics.hpp"

namespace vane::bench {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

// What one thread's connections share. Only that thread writes it; the
// counters the progress line reads are single-writer relaxed atomics.
struct worker {
  asio::io_context ctx{1};
  const load_options* options = nullptr;
  asio::ssl::context* tls = nullptr;  // shared by the threads (OpenSSL locks what it shares)
  std::string request;                // serialized once, sent as is
  tcp::endpoint endpoint;
  clock::time_point start, end;
  double period_ns = 0;  // open loop: between two due times of this thread
  double offset_ns = 0;  // this thread's first due time, so threads interleave
  std::uint64_t next = 0;
  std::uint64_t max_sends = 0;  // 0: no limit
  std::uint64_t sent = 0, late = 0;
  load_errors errors;
  clock::time_point last_done;
  unsigned running = 0;
  metrics::counter completed, failed;
  metrics::concurrent_histogram latency;

  void count(std::uint64_t load_errors::*what) {
    ++(errors.*what);
    failed.add();
  }
};

struct connection {
  explicit connection(worker& w) : w(w), socket(w.ctx), timer(w.ctx) {}
  worker& w;
  tcp::socket socket;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;  // HTTPS: over `socket`, made per connect
  asio::steady_timer timer;
  boost::beast::flat_buffer buffer;
  clock::time_point deadline = clock::time_point::max();  // while a request is out
  bool timed_out = false;
};

// Reads and writes go to the TLS stream when the connection has one: Beast's
// reader and Asio's writer see one stream type either way.
struct client_stream {
  connection& c;
  using executor_type = tcp::socket::executor_type;
  executor_type get_executor() { return c.socket.get_executor(); }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& b, Token&& t) {
    if (c.tls) return c.tls->async_read_some(b, std::forward<Token>(t));
    return c.socket.async_read_some(b, std::forward<Token>(t));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& t) {
    if (c.tls) return c.tls->async_write_some(b, std::forward<Token>(t));
    return c.socket.async_write_some(b, std::forward<Token>(t));
  }
};

asio::awaitable<bool> connect(connection& c) {
  if (c.socket.is_open()) co_return true;
  c.buffer.clear();
  c.tls.reset();
  auto [ec] = co_await c.socket.async_connect(c.w.endpoint, nothrow);
  if (ec) {
    c.socket.close();
    co_return false;
  }
  c.socket.set_option(tcp::no_delay(true));
  if (c.w.tls) {
    c.tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(c.socket, *c.w.tls);
    if (!c.w.options->sni.empty()) SSL_set_tlsext_host_name(c.tls->native_handle(), c.w.options->sni.c_str());
    if (!c.w.options->insecure)
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c.tls->native_handle()), c.w.options->host.c_str());
    auto [hec] = co_await c.tls->async_handshake(asio::ssl::stream_base::client, nothrow);
    if (hec) {
      boost::system::error_code ignored;
      c.socket.close(ignored);
      co_return false;
    }
  }
  co_return true;
}

asio::awaitable<void> run_connection(std::shared_ptr<connection> c) {
  worker& w = c->w;
  const bool open_loop = w.options->rate > 0;
  // A connect is bounded by the request timeout too (the watchdog cancels it): a listener that does
  // not accept would hold it for the kernel's SYN retries, two minutes.
  c->deadline = clock::now() + w.options->timeout;
  co_await connect(*c);  // connected before the first due time; a failure is retried per request
  c->deadline = clock::time_point::max();
  for (;;) {
    clock::time_point due;
    if (open_loop) {
      std::uint64_t i = w.next++;
      due = w.start +
            std::chrono::nanoseconds(static_cast<std::int64_t>(w.offset_ns + static_cast<double>(i) * w.period_ns));
      if (due >= w.end) break;
    } else {
      due = clock::now();
      if (due < w.start) {
        c->timer.expires_at(w.start);
        co_await c->timer.async_wait(nothrow);
        due = clock::now();
      }
      if (due >= w.end) break;
    }
    if (w.max_sends && w.sent >= w.max_sends) break;
    ++w.sent;
    auto now = clock::now();
    if (due > now) {
      c->timer.expires_at(due);
      co_await c->timer.async_wait(nothrow);
    } else if (open_loop && now - due > std::chrono::milliseconds(1)) {
      ++w.late;  // every connection was busy when it fell due
    }
    c->deadline = clock::now() + w.options->timeout;
    c->timed_out = false;
    if (!co_await connect(*c)) {
      c->deadline = clock::time_point::max();
      w.count(c->timed_out ? &load_errors::timeout : &load_errors::connect);
      continue;
    }
    client_stream stream{*c};
    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(w.request), nothrow);
    lean_parser<false> parser;
    parser.body_limit(boost::none);
    boost::system::error_code rec = wec;
    if (!rec) std::tie(rec, std::ignore) = co_await http::async_read(stream, c->buffer, parser, nothrow);
    c->deadline = clock::time_point::max();
    if (rec) {
      if (c->timed_out)
        w.count(&load_errors::timeout);
      else if (&rec.category() == &http::make_error_code(http::error::bad_version).category() &&
               rec != http::error::end_of_stream && rec != http::error::partial_message)
        w.count(&load_errors::bad_response);
      else
        w.count(&load_errors::closed);
      boost::system::error_code ignored;
      c->socket.close(ignored);
      continue;
    }
    auto done = clock::now();
    w.last_done = std::max(w.last_done, done);
    w.latency.record(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(done - due).count()));
    w.completed.add();
    if (parser.status >= 500)
      w.count(&load_errors::status_5xx);
    else if (parser.status >= 400)
      w.count(&load_errors::status_4xx);
    if (!parser.keep_alive()) {
      boost::system::error_code ignored;
      c->socket.close(ignored);
    }
  }
  boost::system::error_code ignored;
  c->socket.close(ignored);
  if (--w.running == 0) w.ctx.stop();  // the watchdog's timer would keep the context alive
}

// Cancels requests past their deadline, every 20 ms: one timer per thread
// instead of one per request.
asio::awaitable<void> watchdog(worker& w, std::vector<std::shared_ptr<connection>> conns) {
  asio::steady_timer t(w.ctx);
  for (;;) {
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(nothrow);
    auto now = clock::now();
    for (auto& c : conns)
      if (c->deadline < now && !c->timed_out) {
        c->timed_out = true;
        boost::system::error_code ignored;
        c->socket.cancel(ignored);
      }
  }
}

std::string build_request(const load_options& o) {
  std::string host = o.host_header.empty() ? o.host + ":" + std::to_string(o.port) : o.host_header;
  std::string r = "GET " + o.target + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: vane-bench\r\n";
  for (const auto& [k, v] : o.headers) {
    r += k;
    r += ": ";
    r += v;
    r += "\r\n";
  }
  r += "\r\n";
  return r;
}

}  // namespace

load_result run_load(const load_options& options, const std::function<void(const load_progress&)>& on_progress) {
  const unsigned threads = std::max(1u, std::min(options.threads, options.connections));
  std::vector<std::unique_ptr<worker>> workers;
  const auto start = clock::now() + std::chrono::milliseconds(100);  // connections are up by then
  const auto end = start + options.duration;
  const auto endpoint = tcp::endpoint(asio::ip::make_address(options.host), options.port);
  std::unique_ptr<asio::ssl::context> tls;
  if (options.tls) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(tls->native_handle(), alpn, sizeof alpn);
    if (options.insecure) {
      tls->set_verify_mode(asio::ssl::verify_none);
    } else {
      if (options.ca_file.empty())
        tls->set_default_verify_paths();
      else
        tls->load_verify_file(options.ca_file);  // throws with OpenSSL's reason
      tls->set_verify_mode(asio::ssl::verify_peer);
    }
  }
  for (unsigned t = 0; t < threads; ++t) {
    auto w = std::make_unique<worker>();
    w->options = &options;
    w->tls = tls.get();
    w->request = build_request(options);
    w->endpoint = endpoint;
    w->start = start;
    w->end = end;
    w->last_done = start;
    if (options.rate > 0) {
      double rate = options.rate / threads;
      w->period_ns = 1e9 / rate;
      w->offset_ns = 1e9 / options.rate * t;
    }
    if (options.max_requests)
      w->max_sends = options.max_requests / threads + (t < options.max_requests % threads ? 1 : 0);
    unsigned conns = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    std::vector<std::shared_ptr<connection>> cs;
    for (unsigned i = 0; i < conns; ++i) cs.push_back(std::make_shared<connection>(*w));
    w->running = conns;
    for (auto& c : cs) asio::co_spawn(w->ctx, run_connection(c), asio::detached);
    asio::co_spawn(w->ctx, watchdog(*w, cs), asio::detached);
    workers.push_back(std::move(w));
  }
  std::vector<std::thread> pool;
  pool.reserve(workers.size());
  std::atomic<unsigned> finished{0};
  for (auto& w : workers)
    pool.emplace_back([&w, &finished] {
      w->ctx.run();
      finished.fetch_add(1);
    });
  // Progress, about once a second, until every thread is done.
  std::uint64_t last_completed = 0;
  auto last = clock::now();
  while (finished.load() < workers.size()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the progress loop's polling period
    auto now = clock::now();
    if (!on_progress || now - last < std::chrono::seconds(1)) continue;
    load_progress p;
    log_linear_histogram h;
    for (auto& w : workers) {
      p.completed += w->completed.value();
      p.errors += w->failed.value();
      w->latency.add_to(h);
    }
    p.elapsed = std::chrono::duration<double>(now - start).count();
    p.rate_last_second =
        static_cast<double>(p.completed - last_completed) / std::chrono::duration<double>(now - last).count();
    p.p99_ms = quantile_ns(h, 0.99) / 1e6;
    last_completed = p.completed;
    last = now;
    on_progress(p);
  }
  for (auto& t : pool) t.join();
  load_result r;
  clock::time_point last_done = start;
  for (auto& w : workers) {
    r.sent += w->sent;
    r.completed += w->completed.value();
    r.late += w->late;
    r.errors.connect += w->errors.connect;
    r.errors.closed += w->errors.closed;
    r.errors.timeout += w->errors.timeout;
    r.errors.bad_response += w->errors.bad_response;
    r.errors.status_4xx += w->errors.status_4xx;
    r.errors.status_5xx += w->errors.status_5xx;
    w->latency.add_to(r.latency_ns);
    last_done = std::max(last_done, w->last_done);
  }
  r.seconds =
      std::chrono::duration<double>(options.rate > 0 ? std::max(last_done, end) - start : last_done - start).count();
  return r;
}

namespace {

asio::awaitable<void> hold_one(tcp::socket& s, const tcp::endpoint& ep, const std::string& request, bool& answered,
                               std::uint64_t& pending, asio::steady_timer& all_up) {
  boost::beast::flat_buffer buffer;
  auto [ec] = co_await s.async_connect(ep, nothrow);
  if (!ec) std::tie(ec, std::ignore) = co_await asio::async_write(s, asio::buffer(request), nothrow);
  if (!ec) {
    lean_parser<false> parser;
    std::tie(ec, std::ignore) = co_await http::async_read(s, buffer, parser, nothrow);
    answered = !ec && parser.status < 400 && parser.keep_alive();
  }
  if (--pending == 0) all_up.cancel();
}

}  // namespace

std::uint64_t hold_connections(const load_options& o, std::chrono::nanoseconds hold,
                               const std::function<void(std::uint64_t)>& on_held) {
  asio::io_context ctx{1};
  const tcp::endpoint ep(asio::ip::make_address(o.host), o.port);
  const std::string request = build_request(o);
  std::vector<std::unique_ptr<tcp::socket>> sockets;
  std::unique_ptr<bool[]> answered(new bool[o.connections]());
  std::uint64_t pending = o.connections;
  asio::steady_timer all_up(ctx, clock::time_point::max());
  for (unsigned i = 0; i < o.connections; ++i) {
    sockets.push_back(std::make_unique<tcp::socket>(ctx));
    asio::co_spawn(ctx, hold_one(*sockets.back(), ep, request, answered[i], pending, all_up), asio::detached);
  }
  std::uint64_t still_open = 0;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        co_await all_up.async_wait(nothrow);
        std::uint64_t n = 0;
        for (unsigned i = 0; i < o.connections; ++i) n += answered[i] ? 1 : 0;
        if (on_held) on_held(n);
        asio::steady_timer t(ctx);
        t.expires_after(hold);
        co_await t.async_wait(nothrow);
        // Still open: the peer has not closed it (a read would see EOF at once).
        for (unsigned i = 0; i < o.connections; ++i) {
          if (!answered[i]) continue;
          char byte;
          ssize_t r = ::recv(sockets[i]->native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
          if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ++still_open;
        }
        for (auto& s : sockets) s->close();
      },
      asio::detached);
  ctx.run();
  return still_open;
}

double quantile_ns(const log_linear_histogram& h, double q) {
  if (h.count() == 0) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(h.count())));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < log_linear_histogram::bucket_count; ++i) {
    seen += h.bucket(i);
    if (seen >= rank) {
      if (i < log_linear_histogram::sub_count) return static_cast<double>(i);
      return (static_cast<double>(log_linear_histogram::lower(i)) +
              static_cast<double>(log_linear_histogram::upper(i))) /
             2;
    }
  }
  return 0;
}

double max_ns(const log_linear_histogram& h) {
  for (std::size_t i = log_linear_histogram::bucket_count; i-- > 0;)
    if (h.bucket(i)) return static_cast<double>(log_linear_histogram::upper(i));
  return 0;
}

}  // namespace vane::bench
