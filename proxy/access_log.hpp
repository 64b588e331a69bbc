#pragma once
// The access log (off by default; `vane-proxy --access-log FILE`, `-` for
// stdout): one JSON line per downstream request, written off the request path.
//
// Each worker copies a fixed-size record into its own single-producer,
// single-consumer ring (no allocation, no lock, no syscall); one writer
// thread drains every ring a few times a second, formats the JSON and writes
// it in one write(2) per batch. A full ring drops the record and counts it
// (vane_access_log_dropped_total): a slow disk must never slow requests.
#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/metrics.hpp"

namespace vane::proxy {

// A string copied into the record, cut at its capacity.
template <std::size_t N>
struct fixed_text {
  std::array<char, N> data;
  std::uint16_t size = 0;
  bool truncated = false;
  void assign(std::string_view s) {
    truncated = s.size() > N;
    size = static_cast<std::uint16_t>(truncated ? N : s.size());
    std::copy_n(s.data(), size, data.data());
  }
  std::string_view view() const { return {data.data(), size}; }
};

struct access_record {
  std::int64_t start_unix_us = 0;  // when the request's first byte was read
  std::uint64_t duration_us = 0;
  std::uint64_t bytes_received = 0;  // request body
  std::uint64_t bytes_sent = 0;      // response body
  std::uint16_t status = 0;
  std::uint8_t version = 11;  // the client's HTTP version: 10, 11, 20
  bool has_upstream = false;
  boost::asio::ip::tcp::endpoint upstream;
  fixed_text<16> method;
  fixed_text<64> route;
  fixed_text<64> cluster;
  fixed_text<64> request_id;
  fixed_text<256> path;
};

class access_ring {
 public:
  explicit access_ring(std::size_t capacity_pow2);
  // Producer (the worker): a slot to fill, or nullptr when the ring is full
  // (the drop is counted); commit() publishes it.
  access_record* reserve();
  void commit() { head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
  // Consumer (the writer thread): calls fn for each published record, then frees them.
  template <class F>
  std::size_t drain(F&& fn) {
    std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (std::uint64_t i = tail; i < head; ++i) fn(slots_[i & mask_]);
    tail_.store(head, std::memory_order_release);
    return static_cast<std::size_t>(head - tail);
  }
  std::uint64_t dropped() const { return dropped_.value(); }

 private:
  std::unique_ptr<access_record[]> slots_;
  std::uint64_t mask_;
  alignas(64) std::atomic<std::uint64_t> head_{0};  // written by the producer
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // written by the consumer
  metrics::counter dropped_;                        // written by the producer
};

class access_logger {
 public:
  // Opens `path` for appending ("-": stdout). Throws std::runtime_error when it cannot.
  access_logger(const std::string& path, std::size_t workers, std::size_t ring_capacity = 4096);
  ~access_logger();
  access_logger(const access_logger&) = delete;
  access_logger& operator=(const access_logger&) = delete;

  access_ring& ring(std::size_t worker) { return *rings_.at(worker); }
  void start();
  // Writes what is queued and stops the writer thread.
  void stop();
  std::uint64_t dropped() const;  // full rings, and lines a failed write lost
  // Opens the file at the path again, after the lines queued (SIGUSR1, as nginx: logrotate moved the file).
  void reopen();
  std::uint64_t written() const { return written_.load(std::memory_order_relaxed); }

 private:
  void run();
  std::size_t flush(std::string& buf);
  std::vector<std::unique_ptr<access_ring>> rings_;
  void reopen_now();
  std::string path_;
  int fd_ = -1;
  bool owns_fd_ = false;
  std::atomic<bool> reopen_{false};
  std::atomic<std::uint64_t> lost_{0};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> written_{0};
};

// One record as its JSON line (with the newline), appended to `out`.
void format_access_line(const access_record& r, std::string& out);

}  // namespace vane::proxy
