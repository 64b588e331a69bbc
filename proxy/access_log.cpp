#include "proxy/access_log.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "common/log.hpp"

namespace vane::proxy {

access_ring::access_ring(std::size_t capacity_pow2)
    : slots_(std::make_unique<access_record[]>(capacity_pow2)), mask_(capacity_pow2 - 1) {
  if (capacity_pow2 == 0 || (capacity_pow2 & mask_) != 0) throw std::invalid_argument("ring capacity: a power of 2");
}

access_record* access_ring::reserve() {
  std::uint64_t head = head_.load(std::memory_order_relaxed);
  if (head - tail_.load(std::memory_order_acquire) > mask_) {
    dropped_.add();
    return nullptr;
  }
  return &slots_[head & mask_];
}

namespace {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      // Control bytes, and bytes outside ASCII (a request target is ASCII;
      // anything else is escaped so that every line stays valid JSON).
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    } else {
      out += ch;
    }
  }
  out += '"';
}

}  // namespace

void format_access_line(const access_record& r, std::string& out) {
  std::time_t secs = static_cast<std::time_t>(r.start_unix_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(out), R"({{"time":"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z","route":)",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (r.start_unix_us / 1000) % 1000);
  append_json_string(out, r.route.view());
  out += R"(,"cluster":)";
  append_json_string(out, r.cluster.view());
  fmt::format_to(std::back_inserter(out), R"(,"status":{},"duration_ms":{:.3f},"bytes_received":{},"bytes_sent":{})",
                 r.status, static_cast<double>(r.duration_us) / 1000.0, r.bytes_received, r.bytes_sent);
  out += R"(,"upstream":)";
  if (r.has_upstream) {
    auto addr = r.upstream.address();
    if (addr.is_v6())
      fmt::format_to(std::back_inserter(out), R"("[{}]:{}")", addr.to_string(), r.upstream.port());
    else
      fmt::format_to(std::back_inserter(out), R"("{}:{}")", addr.to_string(), r.upstream.port());
  } else {
    out += "null";
  }
  out += R"(,"request_id":)";
  if (r.request_id.size)
    append_json_string(out, r.request_id.view());
  else
    out += "null";
  out += r.version == 20   ? R"(,"protocol":"HTTP/2")"
         : r.version == 10 ? R"(,"protocol":"HTTP/1.0")"
                           : R"(,"protocol":"HTTP/1.1")";
  out += R"(,"method":)";
  append_json_string(out, r.method.view());
  out += R"(,"path":)";
  append_json_string(out, r.path.view());
  if (r.path.truncated) out += R"(,"path_truncated":true)";
  out += "}\n";
}

access_logger::access_logger(const std::string& path, std::size_t workers, std::size_t ring_capacity) : path_(path) {
  if (path == "-") {
    fd_ = STDOUT_FILENO;
  } else {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("access log: cannot open " + path + ": " + std::strerror(errno));
    owns_fd_ = true;
  }
  for (std::size_t i = 0; i < workers; ++i) rings_.push_back(std::make_unique<access_ring>(ring_capacity));
}

access_logger::~access_logger() {
  stop();
  if (owns_fd_) ::close(fd_);
}

void access_logger::start() {
  thread_ = std::thread([this] { run(); });
}

void access_logger::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void access_logger::reopen() {
  if (!owns_fd_) return;  // (stdout)
  reopen_.store(true, std::memory_order_release);
  cv_.notify_all();
}

// On the writer thread, between two batches: the file at the path again (logrotate moved the old one).
void access_logger::reopen_now() {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    log::warn("access log: cannot open {} again: {}; writing on to the file open before", path_, std::strerror(errno));
    return;
  }
  ::close(fd_);
  fd_ = fd;
  log::info("access log: {} opened again", path_);
}

std::uint64_t access_logger::dropped() const {
  std::uint64_t n = lost_.load(std::memory_order_relaxed);
  for (const auto& r : rings_) n += r->dropped();
  return n;
}

std::size_t access_logger::flush(std::string& buf) {
  buf.clear();
  std::size_t n = 0;
  for (auto& ring : rings_) n += ring->drain([&](const access_record& r) { format_access_line(r, buf); });
  std::size_t off = 0;
  while (off < buf.size()) {
    ssize_t w = ::write(fd_, buf.data() + off, buf.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      // The lines not written whole are lost (counted as dropped); one cut short is ended, so that the
      // next batch starts a line of its own.
      const auto lost =
          static_cast<std::size_t>(std::count(buf.begin() + static_cast<std::ptrdiff_t>(off), buf.end(), '\n'));
      log::warn("access log: write failed: {}; {} lines lost", std::strerror(errno), lost);
      if (off > 0 && buf[off - 1] != '\n') {
        [[maybe_unused]] auto ended = ::write(fd_, "\n", 1);
      }
      lost_.fetch_add(lost, std::memory_order_relaxed);
      written_.fetch_add(n - lost, std::memory_order_relaxed);
      return n - lost;
    }
    off += static_cast<std::size_t>(w);
  }
  written_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

void access_logger::run() {
  std::string buf;
  buf.reserve(std::size_t{256} * 1024);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // Polled, not signalled: a wake-up per request would cost the workers a syscall.
    cv_.wait_for(lock, std::chrono::milliseconds(50));
    lock.unlock();
    flush(buf);
    if (reopen_.exchange(false, std::memory_order_acq_rel)) reopen_now();
    lock.lock();
  }
  lock.unlock();
  flush(buf);
}

}  // namespace vane::proxy
