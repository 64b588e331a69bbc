#pragma once
// A log-linear histogram of non-negative integers (vane records latencies in
// microseconds), as HdrHistogram lays out its buckets: values below 64 get a
// bucket each; above, every power of two is cut into 64 equal buckets, so a
// bucket is never wider than 1/64 (1.6%) of its lower bound. Memory is fixed
// (bucket_count counters); record() does no allocation and no branch on the
// value's size beyond a count-leading-zeros.
//
// It is the fine histogram of DESIGN.md's metrics: kept per worker, merged at
// scrape, served sparse by /stats/latency, and folded into the coarse
// Prometheus buckets. quantile() interpolates inside a bucket the way
// Prometheus's histogram_quantile does.
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace vane {

class log_linear_histogram {
 public:
  static constexpr unsigned sub_bits = 6;
  static constexpr std::uint64_t sub_count = 1u << sub_bits;  // 64
  static constexpr unsigned max_bits = 36;                    // values up to 2^36 - 1 (19 h in µs); larger are clamped
  static constexpr std::size_t bucket_count = sub_count + (max_bits - sub_bits) * sub_count;

  static constexpr std::size_t index_of(std::uint64_t v) {
    if (v < sub_count) return static_cast<std::size_t>(v);
    if (v >= (std::uint64_t{1} << max_bits)) return bucket_count - 1;
    unsigned exponent = 63u - static_cast<unsigned>(std::countl_zero(v));  // floor(log2 v) >= sub_bits
    unsigned shift = exponent - sub_bits;
    return sub_count + (exponent - sub_bits) * sub_count + static_cast<std::size_t>((v >> shift) - sub_count);
  }
  // The bucket holds the values in [lower(i), upper(i)).
  static constexpr std::uint64_t lower(std::size_t i) {
    if (i < sub_count) return i;
    std::size_t octave = (i - sub_count) / sub_count;
    std::size_t sub = (i - sub_count) % sub_count;
    return (sub_count + sub) << octave;
  }
  static constexpr std::uint64_t upper(std::size_t i) {
    if (i < sub_count) return i + 1;
    std::size_t octave = (i - sub_count) / sub_count;
    std::size_t sub = (i - sub_count) % sub_count;
    return (sub_count + sub + 1) << octave;
  }

  void record(std::uint64_t v) {
    ++counts_[index_of(v)];
    ++count_;
    sum_ += v;
  }
  void merge(const log_linear_histogram& other);
  // For readers that rebuild a histogram bucket by bucket (metrics snapshots, /stats/latency).
  void add_bucket(std::size_t i, std::uint64_t n) {
    counts_[i] += n;
    count_ += n;
  }
  void add_sum(std::uint64_t s) { sum_ += s; }
  void clear() { *this = log_linear_histogram{}; }

  std::uint64_t count() const { return count_; }
  std::uint64_t sum() const { return sum_; }
  std::uint64_t bucket(std::size_t i) const { return counts_[i]; }
  // How many recorded values are below `bound` (whole buckets whose upper edge is <= bound).
  std::uint64_t count_below(std::uint64_t bound) const;
  // The q-quantile (0 <= q <= 1), linearly interpolated inside its bucket as
  // histogram_quantile does; 0 when empty.
  double quantile(double q) const;

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
};

}  // namespace vane
