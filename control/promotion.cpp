#include "control/promotion.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "common/http_client.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<promotion_result> promote_primary(asio::any_io_executor ex, canary_spec c, std::string revision) {
  const promote_spec& p = *c.promote;
  if (!p.url.empty()) {
    auto url = parse_http_url(p.url);
    if (!url) co_return promotion_result{};
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
  pid_t pid = ::fork();
  if (pid < 0) co_return promotion_result{false, fmt::format("Promotion command of {} failed (fork)", c.id())};
  if (pid == 0) {
    ::setenv("VANE_CANARY", c.name.c_str(), 1);
    ::setenv("VANE_NAMESPACE", c.ns.c_str(), 1);
    ::setenv("VANE_REVISION", revision.c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : p.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + p.timeout;
  asio::steady_timer timer(ex);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      co_return promotion_result{
          false, fmt::format("Promotion command of {} timed out after {}", c.id(), format_duration(p.timeout))};
    }
    timer.expires_after(std::chrono::milliseconds(50));  // polling a child without a SIGCHLD handler
    co_await timer.async_wait(nothrow);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) co_return promotion_result{true, {}};
  co_return promotion_result{false, fmt::format("Promotion command of {} failed (exit {})", c.id(),
                                                WIFEXITED(status) ? WEXITSTATUS(status) : -1)};
}

}  // namespace vane::control
