#include "control/promotion.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_client.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<promotion_result> promote_primary(asio::any_io_executor ex, canary_spec c, std::string revision) {
  const promote_spec& p = *c.promote;
  if (!p.url.empty()) {
    auto url = parse_http_url(p.url);
    if (!url)
      co_return promotion_result{false, fmt::format("Promotion of {} failed: {} is not an http:// URL", c.id(), p.url)};
    json::object payload{
        {"name", c.name}, {"namespace", c.ns}, {"revision", revision}, {"primary", c.primary}, {"canary", c.canary}};
    std::string method = "POST", target = url->target, body = json::serialize(payload);
    std::vector<std::pair<std::string, std::string>> headers;
    duration timeout = p.timeout;
    http_result r = co_await http_call(ex, *url, method, target, body, timeout, headers);
    if (r.status >= 200 && r.status <= 299) co_return promotion_result{true, {}};
    co_return promotion_result{false, fmt::format("Promotion of {} failed: {} {}", c.id(), p.url,
                                                  r.status ? std::to_string(r.status) : r.error)};
  }
  // A command: run with VANE_CANARY, VANE_NAMESPACE, VANE_REVISION in its environment; exit 0 is success.
  // It runs in a process group of its own (a timeout kills all it started, not only the shell), with
  // none of the controller's descriptors but a pipe for its output, whose end shows in a failure.
  std::vector<std::string> env_text;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    if (!kv.starts_with("VANE_CANARY=") && !kv.starts_with("VANE_NAMESPACE=") && !kv.starts_with("VANE_REVISION="))
      env_text.emplace_back(kv);
  }
  env_text.push_back("VANE_CANARY=" + c.name);
  env_text.push_back("VANE_NAMESPACE=" + c.ns);
  env_text.push_back("VANE_REVISION=" + revision);
  std::vector<char*> envp, argv;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = p.command;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    co_return promotion_result{false, fmt::format("Promotion command of {} failed (pipe)", c.id())};
  const long max_fd = ::sysconf(_SC_OPEN_MAX);  // (for a kernel without close_range)
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    co_return promotion_result{false, fmt::format("Promotion command of {} failed (fork)", c.id())};
  }
  if (pid == 0) {  // (only async-signal-safe calls from here)
    ::setpgid(0, 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    if (::close_range(3, ~0U, 0) != 0)
      for (long fd = 3; fd < max_fd; ++fd) ::close(static_cast<int>(fd));
    ::execvpe(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // (also here: the group exists before a kill at once, whoever runs first)
  ::close(out[1]);
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  std::string output;  // its last 2 KiB
  // At most 64 KiB a turn: a command that writes without pause must not keep the loop here. True: there
  // may be more (the next turn comes sooner).
  auto drain_output = [&] {
    char buf[4096];
    for (int i = 0; i < 16; ++i) {
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) return false;
      output.append(buf, static_cast<std::size_t>(n));
      if (output.size() > 2048) output.erase(0, output.size() - 2048);
    }
    return true;
  };

  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_out{out[0]};
  auto said = [&] { return output.empty() ? std::string() : ": " + excerpt(output); };
  auto deadline = std::chrono::steady_clock::now() + p.timeout;
  asio::steady_timer timer(ex);
  int status = 0;
  for (;;) {
    const bool more = drain_output();
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);  // the group: what the command started too
      ::waitpid(pid, &status, 0);
      drain_output();
      co_return promotion_result{false, fmt::format("Promotion command of {} timed out after {}{}", c.id(),
                                                    format_duration(p.timeout), said())};
    }
    // Polling a child without a SIGCHLD handler (and its output: sooner while it writes).
    timer.expires_after(std::chrono::milliseconds(more ? 1 : 50));
    co_await timer.async_wait(nothrow);
  }
  drain_output();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) co_return promotion_result{true, {}};
  co_return promotion_result{false, fmt::format("Promotion command of {} failed (exit {}){}", c.id(),
                                                WIFEXITED(status) ? WEXITSTATUS(status) : -1, said())};
}

}  // namespace vane::control
