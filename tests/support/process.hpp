#pragma once
// A child process for end-to-end tests: stdout and stderr merged into one
// pipe, read by a thread, so tests can wait for a line with a deadline
// instead of sleeping. The destructor stops the process (SIGTERM, then SIGKILL).
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vane::test {

class child_process {
 public:
  // own_group: the child leads a new process group (as a shell's foreground job does), so
  // signal_group() reaches everything it started, as Ctrl-C on a terminal would.
  child_process(const std::string& exe, const std::vector<std::string>& args, bool own_group = false);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  // Waits until the output contains `needle`; returns the whole line that holds it.
  std::optional<std::string> wait_for(const std::string& needle,
                                      std::chrono::milliseconds deadline = std::chrono::seconds(30));
  // Waits for the process to exit; returns its exit code (128+N for signal N).
  std::optional<int> wait_exit(std::chrono::milliseconds deadline = std::chrono::seconds(30));
  void signal(int sig);
  void signal_group(int sig);
  std::string output() const;

 private:
  pid_t pid_ = -1;
  bool own_group_ = false;
  int out_fd_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  bool eof_ = false;
  std::optional<int> exit_code_;
};

// The live processes whose process group is `pgid` (from /proc).
std::vector<pid_t> processes_in_group(pid_t pgid);

// Runs a command to completion and returns (exit code, output).
std::pair<int, std::string> run(const std::string& exe, const std::vector<std::string>& args);

}  // namespace vane::test
