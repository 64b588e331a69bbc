#pragma once
// The small writes a worker takes while it handles the events of one wait,
// written together once they are all handled (as HAProxy and Envoy write from
// their event loop instead of at once).
//
// Written at once, each answer and each forwarded request wakes its reader
// (the client, the upstream) while the worker still has more ready sockets to
// read: the peer wakes for one message and sleeps again. Written after the
// pass, they find their readers asleep less often, and the kernel's cost of
// waking a reader, the largest single cost of a proxied request on this
// machine (docs/benchmarks.md), is paid less often.
//
// A stream copies the bytes into its own pending buffer (proxy_stream::defer,
// a few hundred bytes per head) and the writer goes on without waiting; the
// worker's loop calls flush() after each pass. Only worker threads have a
// pass (pass_writes::scope); elsewhere a stream writes at once, as before.
#include <vector>

namespace vane::proxy {

class proxy_stream;

class pass_writes {
 public:
  pass_writes() = default;
  pass_writes(const pass_writes&) = delete;
  pass_writes& operator=(const pass_writes&) = delete;

  // The pass of the calling thread's worker, or null.
  static pass_writes* current() noexcept { return current_; }

  // Makes `p` the calling thread's pass while it lives.
  class scope {
   public:
    explicit scope(pass_writes& p) noexcept { current_ = &p; }
    ~scope() { current_ = nullptr; }
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;
  };

  void add(proxy_stream* s) { streams_.push_back(s); }
  void remove(proxy_stream* s) noexcept {
    for (auto*& p : streams_)
      if (p == s) p = nullptr;
  }
  // Writes what every stream added since the last flush has pending.
  void flush();

 private:
  static inline thread_local pass_writes* current_ = nullptr;
  std::vector<proxy_stream*> streams_;
  std::vector<proxy_stream*> flushing_;
};

}  // namespace vane::proxy
