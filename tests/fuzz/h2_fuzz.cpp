// libFuzzer: vane's HTTP/2 codec, frames in both directions. The input is
// split in two: the first part is what a client sends to vane's server side
// (after the preface), the second what an upstream sends to vane's client
// side; each goes through an nghttp2 session set up as vane sets its own up
// (no automatic WINDOW_UPDATE, the limits' SETTINGS, the abuse checks of
// proxy/http2/frames, the header-list limit), with answers submitted as
// vane does, and all output drained. The first part is also read as the
// HTTP/1.1 head that h2_request_fields turns into HTTP/2 fields.
#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/http2/frames.hpp"

using namespace vane::proxy;

namespace {

struct side {
  h2_abuse_meter meter;
  std::size_t header_bytes = 0;
  std::uint32_t header_limit = 64 * 1024;
  bool ended = false;
  std::vector<std::int32_t> to_answer;
  std::string body = std::string(1000, 'x');
};

int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void* p) {
  static_cast<side*>(p)->header_bytes = 0;
  return 0;
}

int on_header(nghttp2_session*, const nghttp2_frame*, const std::uint8_t*, std::size_t namelen, const std::uint8_t*,
              std::size_t valuelen, std::uint8_t, void* p) {
  auto& s = *static_cast<side*>(p);
  s.header_bytes += namelen + valuelen + 32;
  return s.header_bytes > s.header_limit ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* p) {
  auto& s = *static_cast<side*>(p);
  if (s.meter.frame_received(frame->hd.type, frame->hd.length, frame->hd.flags)) {
    nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
    s.ended = true;
    return 0;
  }
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    s.to_answer.push_back(frame->hd.stream_id);
  return 0;
}

int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* p) {
  static_cast<side*>(p)->meter.frame_sent(frame->hd.type);
  return 0;
}

int on_data(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t*, std::size_t len, void*) {
  nghttp2_session_consume(session, id, len);  // as the relay does once the upstream took the bytes
  return 0;
}

int on_close(nghttp2_session* session, std::int32_t, std::uint32_t error_code, void* p) {
  auto& s = *static_cast<side*>(p);
  if (s.meter.stream_closed(error_code != NGHTTP2_NO_ERROR, true))
    nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
  return 0;
}

ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length, std::uint32_t* flags,
                  nghttp2_data_source* source, void*) {
  auto* body = static_cast<std::string*>(source->ptr);
  const std::size_t n = std::min(length, body->size());
  std::memcpy(buf, body->data(), n);
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

nghttp2_session* make(bool server, side& s) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session* session = nullptr;
  if (server)
    nghttp2_session_server_new2(&session, cbs, &s, opt);
  else
    nghttp2_session_client_new2(&session, cbs, &s, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  const limits_config limits;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.h2.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.h2.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits.h2.max_header_list},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(limits.h2.initial_connection_window));
  s.header_limit = limits.h2.max_header_list;
  return session;
}

void drain(nghttp2_session* session) {
  for (int i = 0; i < 1000; ++i) {
    const std::uint8_t* data = nullptr;
    if (nghttp2_session_mem_send(session, &data) <= 0) break;
  }
}

// Feeds `in` in slices of varying size, answering requests as they come.
void feed(nghttp2_session* session, side& s, const std::uint8_t* in, std::size_t size) {
  std::size_t at = 0, slice = 7;
  while (at < size && !s.ended) {
    const std::size_t n = std::min(slice, size - at);
    if (nghttp2_session_mem_recv(session, in + at, n) < 0) break;
    at += n;
    slice = slice * 3 % 61 + 1;
    for (std::int32_t id : s.to_answer) {
      const nghttp2_nv head[] = {{reinterpret_cast<std::uint8_t*>(const_cast<char*>(":status")),
                                  reinterpret_cast<std::uint8_t*>(const_cast<char*>("200")), 7, 3,
                                  NGHTTP2_NV_FLAG_NONE}};
      nghttp2_data_provider provider{};
      provider.source.ptr = &s.body;
      provider.read_callback = read_body;
      nghttp2_submit_response(session, id, head, 1, &provider);
    }
    s.to_answer.clear();
    drain(session);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::size_t split = size > 0 ? data[0] * size / 256 : 0;
  const std::uint8_t* up = size > 0 ? data + 1 : data;
  const std::size_t up_size = split > 0 ? split - 1 : 0;
  const std::uint8_t* down = data + split;
  const std::size_t down_size = size - split;

  // The head conversion, on the first part read as text.
  {
    std::string names;
    std::vector<nghttp2_nv> nva;
    const std::string_view head(reinterpret_cast<const char*>(up), up_size);
    if (h2_request_fields(head, (size & 1) != 0, (size & 2) != 0, names, nva))
      for (const auto& nv : nva)
        if (nv.namelen > 0 && nv.name == nullptr) __builtin_trap();
  }
  // vane's server side: the client's preface, then the input.
  {
    side s;
    nghttp2_session* server = make(true, s);
    static constexpr char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    nghttp2_session_mem_recv(server, reinterpret_cast<const std::uint8_t*>(preface), sizeof preface - 1);
    feed(server, s, up, up_size);
    nghttp2_session_del(server);
  }
  // vane's client side: a request of ours, then the upstream's frames.
  {
    side s;
    nghttp2_session* client = make(false, s);
    std::string names;
    std::vector<nghttp2_nv> nva;
    h2_request_fields(
        "POST /vane.demo.v1.Demo/Echo HTTP/1.1\r\nHost: upstream\r\nContent-Type: application/grpc\r\n"
        "Connection: keep-alive\r\n\r\n",
        false, true, names, nva);
    nghttp2_data_provider provider{};
    provider.source.ptr = &s.body;
    provider.read_callback = read_body;
    nghttp2_submit_request(client, nullptr, nva.data(), nva.size(), &provider, nullptr);
    drain(client);
    feed(client, s, down, down_size);
    nghttp2_session_del(client);
  }
  return 0;
}
