#pragma once
// List+watch of one resource type, kept in a cache keyed by namespace/name,
// with a callback for each change: the loop of client-go's reflector, small.
//
//   list (consistent read) -> cache replaced, differences told
//   watch ?resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=T (T jittered)
//     ADDED / MODIFIED / DELETED -> cache and callback;  BOOKMARK -> RV only
//     410 Gone (HTTP status or an ERROR event with code 410) -> list again
//     the server ends the watch (its timeout) -> watch again from RV
//     a refusal or a cut connection -> logged with its reason, counted, and
//     the watch retried from RV after a capped exponential backoff
//     a line that is not a watch event (or an ERROR other than 410) -> the
//     same, but listed again: the line may have been a change
//     a failed list -> the same, and listed again
//
// Semantics: https://kubernetes.io/docs/reference/using-api/api-concepts/
// (Efficient detection of changes; Watch bookmarks; Resource versions).
// Everything runs on the client's executor; the cache may be read from any thread.
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "control/k8s_client.hpp"

namespace vane::control {

enum class k8s_change { added, modified, deleted };
const char* to_string(k8s_change c);

// Called on the client's executor after the cache has changed, with the object
// as it is now (as it was last, for deleted). Must not throw.
using k8s_handler = std::function<void(k8s_change, const boost::json::object&)>;

struct k8s_informer_options {
  k8s_resource resource;
  std::string namespace_name;  // "" for every namespace
  std::string label_selector;  // "" for all objects
  // Each watch asks the server to end it after a time in [watch_timeout,
  // 2 * watch_timeout) (client-go: 5 minutes, times 1 + a random fraction),
  // so that many watchers do not all come back at once; exactly
  // watch_timeout when jitter is off (tests).
  std::chrono::seconds watch_timeout{300};
  bool jitter = true;
  // How long past its timeout a silent watch is given before it is taken for dead.
  duration watch_grace = std::chrono::seconds(30);
  // The wait after a failure doubles from backoff_initial up to backoff_max
  // (client-go's reflector: 800 ms to 30 s); a good answer resets it.
  duration backoff_initial = std::chrono::milliseconds(800);
  duration backoff_max = std::chrono::seconds(30);
  std::size_t line_limit = std::size_t{16} << 20;  // a longer watch line is an error
};

// What the loop has done, for logs, status and tests.
struct k8s_informer_stats {
  std::uint64_t lists = 0;     // successful lists
  std::uint64_t watches = 0;   // watches the server accepted (HTTP 200)
  std::uint64_t gone = 0;      // 410s (either form), each followed by a list
  std::uint64_t failures = 0;  // everything else that went wrong
  std::uint64_t bookmarks = 0;
  std::uint64_t events = 0;      // ADDED, MODIFIED and DELETED events applied
  std::string resource_version;  // where the next watch starts
  std::string last_error;        // the last failure's reason, "" before any
  bool synced = false;           // a list has been applied
};

class k8s_informer {
 public:
  k8s_informer(std::shared_ptr<k8s_client> client, k8s_informer_options options, k8s_handler handler);

  // Lists and watches until cancelled (the executor stops, or the coroutine's cancellation slot fires).
  boost::asio::awaitable<void> run();

  std::optional<boost::json::object> get(const std::string& key) const;
  std::vector<boost::json::object> objects() const;  // ordered by key
  k8s_informer_stats stats() const;

  // The steps run() takes, public so that a test can feed them text.
  // A list's answer: the cache becomes its items; the handler is told what
  // was added, changed (another resourceVersion) or deleted since; the watch
  // will start from the list's resourceVersion. "" or why the body was not a list.
  std::string apply_list(std::string_view body);
  // One line of a watch.
  enum class line_outcome { applied, gone, bad };
  line_outcome apply_watch_line(std::string_view line, std::string& why);

 private:
  enum class watch_end { expired, gone, failed, broken };
  boost::asio::awaitable<bool> list();
  boost::asio::awaitable<watch_end> watch();
  boost::asio::awaitable<void> backoff();
  void fail(std::string why);
  void tell(k8s_change change, const boost::json::object& object);

  std::shared_ptr<k8s_client> client_;
  k8s_informer_options options_;
  k8s_handler handler_;
  std::minstd_rand random_;
  duration next_backoff_;
  mutable std::mutex mu_;  // cache_ and stats_: read from other threads
  std::map<std::string, boost::json::object> cache_;
  k8s_informer_stats stats_;
};

}  // namespace vane::control
