#include "tests/support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vane::test {

child_process::child_process(const std::string& exe, const std::vector<std::string>& args, bool own_group)
    : own_group_(own_group) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (own_group) setpgid(0, 0);
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  if (own_group) setpgid(pid_, pid_);  // both sides, so no signal can come before the group exists
  close(fds[1]);
  out_fd_ = fds[0];
  reader_ = std::thread([this] {
    char buf[4096];
    for (;;) {
      ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n <= 0) break;
      std::lock_guard lock(mu_);
      output_.append(buf, static_cast<std::size_t>(n));
      cv_.notify_all();
    }
    std::lock_guard lock(mu_);
    eof_ = true;
    cv_.notify_all();
  });
}

child_process::~child_process() {
  if (!exit_code_) {
    ::kill(own_group_ ? -pid_ : pid_, SIGTERM);
    if (!wait_exit(std::chrono::seconds(10))) {
      ::kill(own_group_ ? -pid_ : pid_, SIGKILL);
      wait_exit(std::chrono::seconds(10));
    }
  }
  if (reader_.joinable()) reader_.join();
  if (out_fd_ >= 0) close(out_fd_);
}

std::optional<std::string> child_process::wait_for(const std::string& needle, std::chrono::milliseconds deadline) {
  std::unique_lock lock(mu_);
  std::size_t pos = std::string::npos;
  cv_.wait_for(lock, deadline, [&] { return (pos = output_.find(needle)) != std::string::npos || eof_; });
  if (pos == std::string::npos) pos = output_.find(needle);
  if (pos == std::string::npos) return std::nullopt;
  auto begin = output_.rfind('\n', pos);
  begin = begin == std::string::npos ? 0 : begin + 1;
  auto end = output_.find('\n', pos);
  return output_.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds deadline) {
  if (exit_code_) return exit_code_;
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    // Polling a child's exit has no fd to wait on without a SIGCHLD handler; 10 ms is not a fixed sleep for a
    // condition, it is the polling interval of one.
    usleep(10'000);
  }
}

void child_process::signal(int sig) { ::kill(pid_, sig); }

void child_process::signal_group(int sig) { ::kill(-pid_, sig); }

std::vector<pid_t> processes_in_group(pid_t pgid) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;  // gone meanwhile
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so fields are read after its last ')'.
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (state != 'Z' && pgrp == pgid) found.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return found;
}

std::string child_process::output() const {
  std::lock_guard lock(mu_);
  return output_;
}

std::pair<int, std::string> run(const std::string& exe, const std::vector<std::string>& args) {
  child_process p(exe, args);
  auto code = p.wait_exit(std::chrono::seconds(60));
  p.wait_for("\x01", std::chrono::seconds(5));  // drain output until EOF
  return {code.value_or(-1), p.output()};
}

}  // namespace vane::test
