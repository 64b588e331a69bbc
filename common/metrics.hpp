#pragma once
// The building blocks of vane's metrics, laid out as Envoy lays out its
// stats: every worker thread writes its own counters and histograms, and only
// those; the admin thread reads them all at scrape time and merges them.
//
// A value written by one thread and read by another must still be an atomic
// (else the read is a data race), but with a single writer an increment needs
// no read-modify-write instruction: a relaxed load, an add and a relaxed store
// compile to the same plain `mov`/`add`/`mov` as a non-atomic counter on
// x86-64 and AArch64. No lock, no contended cache line, no `lock` prefix.
//
// The Prometheus text writer is here too (text format 0.0.4): no package of
// Debian provides one for C++ (prometheus-cpp is not packaged).
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/histogram.hpp"

namespace vane::metrics {

// A counter with one writer thread; any thread may read it.
class counter {
 public:
  void add(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// A gauge with one writer thread (it may go down); readers sum the writers'.
class gauge {
 public:
  void add(std::int64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

// A block allocated by its writer on first use (once, never per record) and
// published to readers; freed with its owner. Keeps routes without traffic
// from paying for histograms they never fill.
template <typename T>
class lazy {
 public:
  lazy() = default;
  lazy(const lazy&) = delete;
  lazy& operator=(const lazy&) = delete;
  ~lazy() { delete p_.load(std::memory_order_acquire); }
  T& get() {  // writer thread only
    T* p = p_.load(std::memory_order_relaxed);
    if (!p) {
      p = new T();
      p_.store(p, std::memory_order_release);
    }
    return *p;
  }
  const T* peek() const { return p_.load(std::memory_order_acquire); }  // any thread; nullptr until first use

 private:
  std::atomic<T*> p_{nullptr};
};

// log_linear_histogram with single-writer atomic buckets. The reader adds a
// snapshot into a plain histogram; the count is taken from the buckets read,
// so a scrape's buckets, +Inf and _count always agree.
class concurrent_histogram {
 public:
  void record(std::uint64_t v) {
    bump(counts_[log_linear_histogram::index_of(v)], 1);
    bump(sum_, v);
  }
  void add_to(log_linear_histogram& out) const;

 private:
  static void bump(std::atomic<std::uint64_t>& a, std::uint64_t n) {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> counts_[log_linear_histogram::bucket_count]{};
  std::atomic<std::uint64_t> sum_{0};
};

// Counters by HTTP status code (100..599; the proxy never lets another code through).
class status_counters {
 public:
  static constexpr unsigned first = 100, last = 599;
  void add(unsigned code) {
    if (code < first || code > last) code = 502;
    by_code_[code - first].add();
  }
  std::uint64_t value(unsigned code) const { return by_code_[code - first].value(); }

 private:
  counter by_code_[last - first + 1];
};

// Counts by gRPC status, 0 (OK) to 16 (UNAUTHENTICATED).
class grpc_status_counters {
 public:
  static constexpr unsigned count = 17;
  void add(unsigned status) { by_status_[status < count ? status : 2].add(); }  // (out of range: UNKNOWN)
  std::uint64_t value(unsigned status) const { return by_status_[status].value(); }

 private:
  counter by_status_[count];
};

// --- Prometheus text format 0.0.4 ---

struct label {
  std::string_view name;
  std::string_view value;
};

// Label values escape backslash, double quote and newline; HELP text escapes
// backslash and newline (the format's rules).
void append_label_value(std::string& out, std::string_view v);

class prometheus_writer {
 public:
  explicit prometheus_writer(std::string& out) : out_(out) {}
  // Starts a metric family: every sample of it must follow before the next family.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::span<const label> labels, double value);
  void sample(std::string_view name, std::span<const label> labels, std::uint64_t value);
  // A histogram in seconds from a fine histogram of microseconds: cumulative
  // `_bucket` lines for `bounds` (seconds) and +Inf, `_sum` and `_count`. A
  // fine bucket counts below a bound when its upper edge is at most the bound
  // (its values are then all below it), so a value within 1/64 under a bound
  // may be counted in the next bucket up.
  void histogram_seconds(std::string_view name, std::span<const label> labels, const log_linear_histogram& h,
                         std::span<const double> bounds);

 private:
  void head(std::string_view name, std::string_view suffix, std::span<const label> labels,
            const label* extra = nullptr);
  std::string& out_;
};

// The bucket bounds DESIGN.md fixes for every vane latency histogram, in seconds.
std::span<const double> duration_bounds();

// A number as Prometheus writes it: integers plainly, +Inf/-Inf/NaN by name.
void append_number(std::string& out, double v);

}  // namespace vane::metrics
