#pragma once
// The byte pattern of the demo service's /bytes/N and the checksum it reports
// for uploads, shared with the tests so that both sides agree on bytes.
#include <cstddef>
#include <cstdint>

namespace vane::demo {

inline char pattern_byte(std::uint64_t offset) { return static_cast<char>((offset * 31 + 7) & 0xff); }

// FNV-1a, 64 bit, streamed.
struct fnv1a {
  std::uint64_t state = 14695981039346656037ULL;
  void update(const char* data, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      state ^= static_cast<unsigned char>(data[i]);
      state *= 1099511628211ULL;
    }
  }
};

}  // namespace vane::demo
