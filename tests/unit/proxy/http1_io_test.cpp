// The HTTP/1.x transport on real loopback sockets, without a proxy: heads
// read across several reads (the views follow the bytes when the buffer
// moves them), bodies relayed batch by batch and failing at each step in
// turn (the sender stops after k chunks, sends a broken chunk, passes the
// limit), and the stream's deadline.
#include <gtest/gtest.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <optional>
#include <string>
#include <thread>

#include "proxy/http1/io.hpp"

namespace asio = boost::asio;
using namespace vane::proxy;
using namespace std::chrono_literals;

namespace {

// Two connected loopback sockets on one io_context: `near` as a proxy_stream
// (the side under test), `far` a plain socket the test writes and reads.
struct socket_pair {
  asio::io_context ioc;
  std::optional<proxy_stream> near;
  worker_socket far{ioc.get_executor()};
  socket_pair() {
    asio::basic_socket_acceptor<asio::ip::tcp, worker_executor> acceptor(
        ioc.get_executor(), asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    worker_socket client(ioc.get_executor());
    client.connect(acceptor.local_endpoint());
    acceptor.accept(far);
    near.emplace(std::move(client));
  }
  void send(std::string_view bytes) { asio::write(far, asio::buffer(bytes.data(), bytes.size())); }
  // Runs `t` to its end on the io_context and returns its result.
  template <class T>
  T run(task<T> t) {
    std::optional<T> out;
    asio::co_spawn(ioc, std::move(t), [&](const std::exception_ptr& e, T v) {
      if (e) std::rethrow_exception(e);
      out = std::move(v);
    });
    ioc.restart();               // (stopped when it last ran out of work)
    while (!out) ioc.run_one();  // (not run(): a stream's deadline timer may still be armed)
    return std::move(*out);
  }
};

}  // namespace

TEST(Http1Io, AHeadAcrossReadsKeepsItsBytes) {
  socket_pair s;
  // Longer than one read (4 KiB): the buffer grows, and moves what Beast took already.
  std::string head = "GET /long HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 40; ++i)
    head += "X-Field-" + std::to_string(i) + ": " + std::string(200, char('a' + i % 26)) + "\r\n";
  head += "\r\n";
  s.send(head + "rest");
  message_head h;
  std::vector<std::string_view> pieces;
  h1_parser<true> p(h, pieces);
  p.header_limit(64 * 1024);
  boost::beast::flat_buffer buffer;
  std::string store;
  s.near->expires_after(10s);
  const auto ec = s.run(read_head(*s.near, buffer, p, store));
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(h.target, "/long");
  ASSERT_EQ(h.fields.size(), 41U);
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(h.fields[i + 1].name, "X-Field-" + std::to_string(i));
    EXPECT_EQ(h.fields[i + 1].value, std::string(200, char('a' + i % 26)));
  }
  EXPECT_EQ(std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()), "rest");
}

// A second pair on the same context as `s`: the upstream side of a relay.
struct upstream_pair {
  worker_socket far;  // (first: `near` is connected to it)
  proxy_stream near;
  static worker_socket connect(socket_pair& s, worker_socket& far) {
    asio::basic_socket_acceptor<asio::ip::tcp, worker_executor> acceptor(
        s.ioc.get_executor(), asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    worker_socket up(s.ioc.get_executor());
    up.connect(acceptor.local_endpoint());
    acceptor.accept(far);
    return up;
  }
  explicit upstream_pair(socket_pair& s) : far(s.ioc.get_executor()), near(connect(s, far)) {}
};

TEST(Http1Io, ABodyIsRelayedAndReframed) {
  socket_pair s;
  s.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
  message_head h;
  std::vector<std::string_view> pieces;
  h1_parser<true> p(h, pieces);
  boost::beast::flat_buffer buffer;
  std::string store;
  s.near->expires_after(10s);
  ASSERT_FALSE(s.run(read_head(*s.near, buffer, p, store)));
  upstream_pair up(s);
  h1_source<true> body(p, *s.near, buffer, std::chrono::milliseconds(10000));
  std::uint64_t bytes = 0;
  body_tee tee;
  tee.cap = 100;
  h1_sink to(up.near, std::chrono::milliseconds(10000), &bytes, &tee);
  to.set_head("HEAD\r\n", true);
  EXPECT_EQ(s.run(relay(body, to)), relay_status::ok);
  EXPECT_TRUE(to.head_sent());
  EXPECT_TRUE(body.touched());
  EXPECT_EQ(bytes, 11U);
  EXPECT_EQ(tee.data, "hello world");
  const std::string_view expected = "HEAD\r\nb\r\nhello world\r\n0\r\n\r\n";
  std::string got(expected.size(), '\0');
  asio::read(up.far, asio::buffer(got));
  EXPECT_EQ(got, expected);  // one chunk per batch, then the last chunk
}

// Small writes (a head and the body that came with it) go out as one
// gathered send: when the socket takes only a part of one, flush() writes
// exactly what was not taken, so the peer reads every byte once, in order.
// Eight fills of the socket, with varied sizes, so that the send that stops
// short stops at different places of its gathered copy.
TEST(Http1Io, AGatheredWriteTheSocketTakesInPartLosesAndRepeatsNothing) {
  socket_pair s;
  for (int fill = 0; fill < 8; ++fill) {
    upstream_pair up(s);
    up.near.io().set_option(asio::socket_base::send_buffer_size(4096));
    up.far.set_option(asio::socket_base::receive_buffer_size(4096));
    std::string expected;
    std::string head;
    std::string body;  // (the pending batch's pieces point here until flush())
    std::optional<h1_sink> to;
    bool pending = false;
    for (int i = 0; i < 100000 && !pending; ++i) {
      to.emplace(up.near, std::chrono::milliseconds(10000));
      head = "HEAD " + std::to_string(i) + "\r\n";
      body.assign(300 + (i * 13 + fill * 37) % 200, char('a' + (i + fill) % 26));
      to->set_head(head, false);
      const std::array<std::string_view, 1> pieces{body};
      const body_sink::put_result r = to->put(pieces, true);
      expected += head + body;
      if (r == body_sink::put_result::pending)
        pending = true;
      else
        ASSERT_EQ(r, body_sink::put_result::written);
    }
    ASSERT_TRUE(pending) << "the socket never filled up";
    std::string got(expected.size(), '\0');
    boost::system::error_code read_ec;
    std::thread reader([&] { asio::read(up.far, asio::buffer(got), read_ec); });
    EXPECT_TRUE(s.run(to->flush()));
    boost::system::error_code ignored;
    up.near.io().shutdown(asio::socket_base::shutdown_send, ignored);  // a short stream ends the read
    reader.join();
    EXPECT_FALSE(read_ec) << read_ec.message() << " in fill " << fill;
    EXPECT_EQ(got, expected) << "in fill " << fill;
  }
}

// A chunked body whose sender fails at chunk k of 4, for each k: what the
// relay reports, and that nothing past the failure was written.
TEST(Http1Io, EachStepOfABodyFailsInTurn) {
  const std::string chunks[] = {"3\r\nabc\r\n", "2\r\nde\r\n", "1\r\nf\r\n", "0\r\n\r\n"};
  for (int fail_at = 0; fail_at <= 4; ++fail_at) {
    for (const char* how : {"close", "bad chunk", "too large"}) {
      SCOPED_TRACE(std::string(how) + " at step " + std::to_string(fail_at));
      socket_pair s;
      std::string sent = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (int i = 0; i < fail_at && i < 4; ++i) sent += chunks[i];
      const bool whole = fail_at == 4;
      if (!whole && std::string_view(how) == "bad chunk") sent += "zz\r\n";
      if (!whole && std::string_view(how) == "too large") sent += "100\r\n";
      s.send(sent);
      if (!whole) s.far.shutdown(asio::socket_base::shutdown_send);
      message_head h;
      std::vector<std::string_view> pieces;
      h1_parser<true> p(h, pieces);
      p.body_limit(64);
      boost::beast::flat_buffer buffer;
      std::string store;
      s.near->expires_after(10s);
      ASSERT_FALSE(s.run(read_head(*s.near, buffer, p, store)));
      upstream_pair up(s);
      proxy_stream& upstream = up.near;
      worker_socket& up_far = up.far;
      h1_source<true> body(p, *s.near, buffer, std::chrono::milliseconds(10000));
      std::uint64_t bytes = 0;
      h1_sink to(upstream, std::chrono::milliseconds(10000), &bytes);
      const auto status = s.run(relay(body, to));
      std::string expect_bytes = std::string("abcdef").substr(0, fail_at == 0   ? 0
                                                                 : fail_at == 1 ? 3
                                                                                : 5 + (fail_at > 2));
      if (whole) {
        EXPECT_EQ(status, relay_status::ok);
      } else if (std::string_view(how) == "close") {
        EXPECT_EQ(status, relay_status::read_failed);
      } else if (std::string_view(how) == "bad chunk") {
        EXPECT_EQ(status, relay_status::bad_input);
      } else {
        EXPECT_EQ(status, relay_status::too_large);
      }
      upstream.tcp().shutdown(asio::socket_base::shutdown_send);
      std::string got;
      boost::system::error_code ec;
      asio::read(up_far, asio::dynamic_buffer(got), ec);
      // Unframed (Content-Length out): exactly the bytes counted, never one
      // past the failure. A close loses nothing that came whole; a bad chunk
      // or the limit may also drop the good pieces that came in the same
      // read (the whole batch is refused: the message is bad anyway).
      EXPECT_EQ(got.size(), bytes);
      EXPECT_EQ(got, expect_bytes.substr(0, got.size()));
      if (whole || std::string_view(how) == "close") {
        EXPECT_EQ(got, expect_bytes);
      }
    }
  }
}

TEST(Http1Io, ADeadlineTimesOutThePendingReadOnly) {
  socket_pair s;
  boost::beast::flat_buffer buffer;
  s.near->expires_after(50ms);
  EXPECT_EQ(s.run(read_some(*s.near, buffer, 4096)), boost::beast::error::timeout);
  EXPECT_FALSE(s.near->tcp().is_open());  // closed, as Beast's tcp_stream does

  // A deadline ended by expires_never() (as every I/O function does once its
  // operation is done) closes nothing when its time comes.
  socket_pair t;
  t.send("x");
  t.near->expires_after(20ms);
  EXPECT_FALSE(t.run(read_some(*t.near, buffer, 4096)));
  worker_timer later(t.ioc.get_executor(), 200ms);
  bool waited = false;
  later.async_wait([&](boost::system::error_code) { waited = true; });
  t.ioc.restart();
  while (!waited) t.ioc.run_one();
  EXPECT_TRUE(t.near->tcp().is_open());
  t.send("y");
  t.near->expires_after(10s);
  EXPECT_FALSE(t.run(read_some(*t.near, buffer, 4096)));
}

// A read that returns less than it asked for makes the next read wait for the
// socket's next readiness event instead of trying a recv first
// (proxy/short_read.hpp). Nothing may be lost that way: bytes that come after
// the read started end it, and so do bytes that came before it started, when
// the worker had already taken their event with no read pending.
TEST(Http1Io, AReadAfterAShortReadStillGetsWhatComesNext) {
  socket_pair s;
  boost::beast::flat_buffer buffer;
  auto text = [&] { return std::string(static_cast<const char*>(buffer.data().data()), buffer.size()); };
  s.send("abc");
  s.near->expires_after(10s);
  ASSERT_FALSE(s.run(read_some(*s.near, buffer, 4096)));  // 3 of 4096: short
  EXPECT_EQ(text(), "abc");
  buffer.consume(buffer.size());

  // The next read waits (no byte yet), and ends when bytes come.
  s.near->expires_after(10s);  // (each read ends its deadline: one per read)
  std::optional<boost::system::error_code> done;
  asio::co_spawn(s.ioc, read_some(*s.near, buffer, 4096),
                 [&](const std::exception_ptr& e, boost::system::error_code ec) {
                   if (e) std::rethrow_exception(e);
                   done = ec;
                 });
  s.ioc.restart();
  s.ioc.poll();
  EXPECT_FALSE(done) << "a read finished with nothing to read";
  s.send("def");
  while (!done) s.ioc.run_one();  // the 10 s deadline ends a read that would never be woken
  ASSERT_FALSE(*done) << done->message();
  EXPECT_EQ(text(), "def");
  buffer.consume(buffer.size());

  // Bytes whose readiness event the worker took while no read was pending.
  s.send("ghi");
  for (int i = 0; i < 50 && s.near->tcp().available() == 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(s.near->tcp().available(), 3U);
  s.ioc.restart();
  s.ioc.poll();  // the reactor takes the event now, with no read to give it to
  s.near->expires_after(10s);
  EXPECT_FALSE(s.run(read_some(*s.near, buffer, 4096)));
  EXPECT_EQ(text(), "ghi");
  buffer.consume(buffer.size());

  // A read that fills its buffer leaves more to read: the next read takes it at once.
  s.send(std::string(100, 'x'));
  for (int i = 0; i < 1000 && s.near->tcp().available() < 100; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(s.near->tcp().available(), 100U);
  s.near->expires_after(10s);
  EXPECT_FALSE(s.run(read_some(*s.near, buffer, 60)));
  EXPECT_EQ(buffer.size(), 60U);
  s.near->expires_after(10s);
  EXPECT_FALSE(s.run(read_some(*s.near, buffer, 60)));
  EXPECT_EQ(buffer.size(), 100U);
}

namespace {

// The far end sends "abc" and at once ends the connection with `end` (a FIN
// or a reset), so both come in one readiness event, which the reactor takes
// with no read waiting; then the near end reads the bytes (with or without
// the kernel's hint). What a read after them sees is the test's.
template <class End>
void read_last_bytes_then(socket_pair& s, bool hints, boost::beast::flat_buffer& buffer, End end) {
  if (hints) {
    ASSERT_TRUE(enable_read_hints(s.near->tcp()));
  }
  s.send("abc");
  end();
  s.near->expires_after(10s);
  s.ioc.restart();
  s.ioc.poll();  // the reactor takes the event now, with no read to give it to
  EXPECT_FALSE(s.run(read_some(*s.near, buffer, 4096)));
  EXPECT_EQ(std::string(static_cast<const char*>(buffer.data().data()), buffer.size()), "abc");
}

}  // namespace

// A peer that sends its last bytes and closes at once: its end comes in the
// same readiness event as the bytes. The read that takes the bytes must not
// leave the end unread (no further event comes for it): the next read ends
// with the end, not at its deadline.
TEST(Http1Io, AnEndThatCameWithTheLastBytesIsRead) {
  for (const bool hints : {true, false}) {
    socket_pair s;
    boost::beast::flat_buffer buffer;
    read_last_bytes_then(s, hints, buffer, [&] { s.far.shutdown(asio::socket_base::shutdown_send); });
    s.near->expires_after(10s);
    EXPECT_EQ(s.run(read_some(*s.near, buffer, 4096)), asio::error::eof) << (hints ? "with" : "without") << " hints";
  }
}

// The same with a reset (RST) instead of an end: the kernel's hint does not
// count a pending reset, so the read that takes the last bytes is told none
// are left, and the reset's event is spent. The next read must still end with
// the reset at once, not at its deadline; and after a write (which meets the
// reset) as well.
TEST(Http1Io, AResetThatCameWithTheLastBytesIsRead) {
  for (const bool write_between : {false, true}) {
    for (const bool hints : {true, false}) {
      socket_pair s;
      boost::beast::flat_buffer buffer;
      read_last_bytes_then(s, hints, buffer, [&] {
        s.far.set_option(asio::socket_base::linger(true, 0));
        s.far.close();  // a reset, not an end
      });
      const auto why = std::string(hints ? "with" : "without") + " hints" + (write_between ? ", a write between" : "");
      if (write_between) {
        boost::system::error_code wec;
        s.near->io().write_some(asio::buffer("x", 1), wec);
        EXPECT_EQ(wec, asio::error::connection_reset) << why;
        continue;  // the writer closes the connection on that error
      }
      // A read of nothing (the TLS engine's no-op, to complete through the executor) reads nothing from the
      // socket: it must not take the reset that the next real read reports.
      auto read_nothing = [&]() -> task<boost::system::error_code> {
        auto [ec, n] = co_await s.near->async_read_some(asio::mutable_buffer(), task_nothrow);
        co_return ec;
      };
      EXPECT_FALSE(s.run(read_nothing())) << why;
      s.near->expires_after(10s);  // (a read left waiting would end with its timeout)
      EXPECT_EQ(s.run(read_some(*s.near, buffer, 4096)), asio::error::connection_reset) << why;
    }
  }
}
