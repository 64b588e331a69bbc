#include "common/histogram.hpp"

#include <cmath>

namespace vane {

void log_linear_histogram::merge(const log_linear_histogram& other) {
  for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
}

std::uint64_t log_linear_histogram::count_below(std::uint64_t bound) const {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < bucket_count && upper(i) <= bound; ++i) n += counts_[i];
  return n;
}

double log_linear_histogram::quantile(double q) const {
  if (count_ == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  // The rank of the value sought, then the bucket that holds it; inside the
  // bucket the values are taken as spread evenly (histogram_quantile's model).
  double rank = q * static_cast<double>(count_);
  std::uint64_t below = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    std::uint64_t c = counts_[i];
    if (c == 0) continue;
    if (static_cast<double>(below + c) >= rank) {
      double lo = static_cast<double>(lower(i));
      double hi = static_cast<double>(upper(i));
      return lo + (hi - lo) * (rank - static_cast<double>(below)) / static_cast<double>(c);
    }
    below += c;
  }
  return static_cast<double>(upper(bucket_count - 1));
}

}  // namespace vane
