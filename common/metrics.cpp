#include "common/metrics.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>

namespace vane::metrics {

void concurrent_histogram::add_to(log_linear_histogram& out) const {
  for (std::size_t i = 0; i < log_linear_histogram::bucket_count; ++i) {
    std::uint64_t n = counts_[i].load(std::memory_order_relaxed);
    if (n) out.add_bucket(i, n);
  }
  out.add_sum(sum_.load(std::memory_order_relaxed));
}

void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<std::int64_t>(v));
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);  // shortest form that reads back the same
  }
}

void prometheus_writer::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {
    if (c == '\\')
      out_ += "\\\\";
    else if (c == '\n')
      out_ += "\\n";
    else
      out_ += c;
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void prometheus_writer::head(std::string_view name, std::string_view suffix, std::span<const label> labels,
                             const label* extra) {
  out_ += name;
  out_ += suffix;
  if (labels.empty() && !extra) {
    out_ += ' ';
    return;
  }
  out_ += '{';
  bool first = true;
  auto one = [&](const label& l) {
    if (!first) out_ += ',';
    first = false;
    out_ += l.name;
    out_ += "=\"";
    append_label_value(out_, l.value);
    out_ += '"';
  };
  for (const auto& l : labels) one(l);
  if (extra) one(*extra);
  out_ += "} ";
}

void prometheus_writer::sample(std::string_view name, std::span<const label> labels, double value) {
  head(name, "", labels);
  append_number(out_, value);
  out_ += '\n';
}

void prometheus_writer::sample(std::string_view name, std::span<const label> labels, std::uint64_t value) {
  head(name, "", labels);
  fmt::format_to(std::back_inserter(out_), "{}\n", value);
}

void prometheus_writer::histogram_seconds(std::string_view name, std::span<const label> labels,
                                          const log_linear_histogram& h, std::span<const double> bounds) {
  // One pass over the fine buckets, which are in increasing order.
  std::size_t i = 0;
  std::uint64_t cumulative = 0;
  char le[32];
  for (double bound : bounds) {
    // Bounds in µs, rounded: 0.0005 s is 500 µs exactly, not 499.999...
    auto bound_us = static_cast<std::uint64_t>(std::llround(bound * 1e6));
    while (i < log_linear_histogram::bucket_count && log_linear_histogram::upper(i) <= bound_us)
      cumulative += h.bucket(i++);
    auto end = fmt::format_to_n(le, sizeof le - 1, "{}", bound);
    label le_label{"le", std::string_view(le, end.size)};
    head(name, "_bucket", labels, &le_label);
    fmt::format_to(std::back_inserter(out_), "{}\n", cumulative);
  }
  label inf{"le", "+Inf"};
  head(name, "_bucket", labels, &inf);
  fmt::format_to(std::back_inserter(out_), "{}\n", h.count());
  head(name, "_sum", labels);
  append_number(out_, static_cast<double>(h.sum()) / 1e6);
  out_ += '\n';
  head(name, "_count", labels);
  fmt::format_to(std::back_inserter(out_), "{}\n", h.count());
}

std::span<const double> duration_bounds() {
  static constexpr std::array<double, 25> bounds{0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02,
                                                 0.03,   0.05,  0.075, 0.1,   0.15,  0.2,    0.3,  0.5,   0.75,
                                                 1,      1.5,   2,     3,     5,     10,     30};
  return bounds;
}

}  // namespace vane::metrics
