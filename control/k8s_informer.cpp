#include "control/k8s_informer.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include "common/address.hpp"
#include "common/log.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;

const char* to_string(k8s_change c) {
  switch (c) {
    case k8s_change::added:
      return "added";
    case k8s_change::modified:
      return "modified";
    case k8s_change::deleted:
      return "deleted";
  }
  return "?";
}

k8s_informer::k8s_informer(std::shared_ptr<k8s_client> client, k8s_informer_options options, k8s_handler handler)
    : client_(std::move(client)),
      options_(std::move(options)),
      handler_(std::move(handler)),
      random_(std::random_device{}()),
      next_backoff_(options_.backoff_initial) {}

std::optional<json::object> k8s_informer::get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<json::object> k8s_informer::objects() const {
  std::lock_guard lock(mu_);
  std::vector<json::object> out;
  out.reserve(cache_.size());
  for (const auto& [key, object] : cache_) out.push_back(object);
  return out;
}

k8s_informer_stats k8s_informer::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void k8s_informer::tell(k8s_change change, const json::object& object) {
  if (handler_) handler_(change, object);
}

void k8s_informer::fail(std::string why) {
  log::warn("kubernetes: {}: {}", options_.resource.plural, why);
  std::lock_guard lock(mu_);
  ++stats_.failures;
  stats_.last_error = std::move(why);
}

std::string k8s_informer::apply_list(std::string_view body) {
  auto list = parse_json_object(body);
  if (!list) return "the list is " + list.why;
  const json::array* items = member_array(*list.value, "items");
  if (!items) return "a list without items: " + excerpt(body);
  std::map<std::string, json::object> fresh;
  for (const auto& item : *items) {
    if (!item.is_object()) return "a list item is " + std::string(kind_of(item));
    std::string key = k8s_key(item.as_object());
    if (key.empty()) return "a list item without metadata.name";
    fresh.emplace(std::move(key), item.as_object());
  }
  std::string version = k8s_resource_version(*list.value);
  if (version.empty()) return "a list without metadata.resourceVersion";

  // What changed since the cache was last right: the handler hears only differences, so
  // a list after a 410 neither repeats what it knew nor loses what happened in between.
  std::vector<std::pair<k8s_change, json::object>> changes;
  std::map<std::string, json::object> old;
  {
    std::lock_guard lock(mu_);
    old.swap(cache_);
    cache_ = fresh;
    stats_.resource_version = version;
    stats_.synced = true;
    ++stats_.lists;
  }
  for (const auto& [key, object] : fresh) {
    auto it = old.find(key);
    if (it == old.end())
      changes.emplace_back(k8s_change::added, object);
    else if (k8s_resource_version(it->second) != k8s_resource_version(object))
      changes.emplace_back(k8s_change::modified, object);
  }
  for (const auto& [key, object] : old)
    if (!fresh.contains(key)) changes.emplace_back(k8s_change::deleted, object);
  for (const auto& [change, object] : changes) tell(change, object);
  return {};
}

k8s_informer::line_outcome k8s_informer::apply_watch_line(std::string_view line, std::string& why) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return line_outcome::applied;
  auto event = parse_json_object(line);
  if (!event) {
    why = "a watch line is " + event.why;
    return line_outcome::bad;
  }
  auto type = member_string(*event.value, "type");
  const json::object* object = member_object(*event.value, "object");
  if (!type || !object) {
    why = "a watch event without type or object: " + excerpt(line);
    return line_outcome::bad;
  }
  if (*type == "ERROR") {
    // The object is a Status; 410 Gone: the resourceVersion is too old to watch from.
    auto code = object->contains("code") ? as_integer(object->at("code")) : std::nullopt;
    if (code == 410) return line_outcome::gone;
    auto message = member_string(*object, "message");
    why = "the watch sent an ERROR: " + (message ? std::string(*message) : excerpt(line));
    return line_outcome::bad;
  }
  std::string version = k8s_resource_version(*object);
  if (*type == "BOOKMARK") {
    // Only metadata.resourceVersion means anything in a bookmark's object.
    if (version.empty()) {
      why = "a BOOKMARK without metadata.resourceVersion";
      return line_outcome::bad;
    }
    std::lock_guard lock(mu_);
    stats_.resource_version = std::move(version);
    ++stats_.bookmarks;
    return line_outcome::applied;
  }
  if (*type != "ADDED" && *type != "MODIFIED" && *type != "DELETED") {
    why = "a watch event of unknown type " + std::string(*type);
    return line_outcome::bad;
  }
  std::string key = k8s_key(*object);
  if (key.empty() || version.empty()) {
    why = "a " + std::string(*type) + " event without metadata.name or resourceVersion";
    return line_outcome::bad;
  }
  k8s_change change = k8s_change::deleted;
  {
    std::lock_guard lock(mu_);
    if (*type == "DELETED") {
      cache_.erase(key);
    } else {
      auto [it, inserted] = cache_.insert_or_assign(key, *object);
      change = inserted ? k8s_change::added : k8s_change::modified;
    }
    stats_.resource_version = std::move(version);
    ++stats_.events;
  }
  tell(change, *object);
  return line_outcome::applied;
}

asio::awaitable<bool> k8s_informer::list() {
  std::string target = options_.resource.path(options_.namespace_name);
  if (!options_.label_selector.empty()) target += "?labelSelector=" + percent_encode(options_.label_selector);
  http_result answer = co_await client_->call("GET", target);
  if (answer.status != 200) {
    fail("list " + target + ": " + k8s_answer_text(answer));
    co_return false;
  }
  if (auto why = apply_list(answer.body); !why.empty()) {
    fail("list " + target + ": " + why);
    co_return false;
  }
  co_return true;
}

asio::awaitable<k8s_informer::watch_end> k8s_informer::watch() {
  auto seconds = options_.watch_timeout;
  if (options_.jitter && seconds.count() > 1)
    seconds += std::chrono::seconds(std::uniform_int_distribution<std::int64_t>(0, seconds.count() - 1)(random_));
  std::string target = options_.resource.path(options_.namespace_name) +
                       "?watch=true&allowWatchBookmarks=true&resourceVersion=" + stats().resource_version +
                       "&timeoutSeconds=" + std::to_string(seconds.count());
  if (!options_.label_selector.empty()) target += "&labelSelector=" + percent_encode(options_.label_selector);
  std::string pending, bad;
  bool gone = false;
  std::size_t lines = 0;
  const auto started = std::chrono::steady_clock::now();
  auto on_data = [&](std::string_view piece) {
    pending.append(piece);
    std::size_t start = 0;
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', start)) {
      auto outcome = apply_watch_line(std::string_view(pending).substr(start, nl - start), bad);
      start = nl + 1;
      ++lines;
      if (outcome == line_outcome::gone) gone = true;
      if (outcome != line_outcome::applied) return false;
    }
    pending.erase(0, start);
    if (pending.size() > options_.line_limit) {
      bad = "a watch line over " + std::to_string(options_.line_limit) + " bytes";
      return false;
    }
    return true;
  };
  http_result answer = co_await client_->stream(target, seconds + options_.watch_grace, on_data);
  if (answer.status == 410 || gone) {
    std::lock_guard lock(mu_);
    ++stats_.gone;
    if (answer.status == 200) ++stats_.watches;
    co_return watch_end::gone;
  }
  if (answer.status != 200) {
    fail("watch " + target + ": " + k8s_answer_text(answer));
    co_return watch_end::failed;
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.watches;
  }
  if (!bad.empty()) {
    // An event that could not be read may have been a change: only a list can tell.
    fail("watch " + target + ": " + bad + " (listing again)");
    co_return watch_end::broken;
  }
  if (lines == 0 && answer.error.empty() && std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
    // As client-go's "very short watch": a watch that ends at once with nothing in it did not
    // expire (something in front of the API server closes it); watching again at once would loop.
    fail("watch " + target + ": it ended within a second with no event (backing off)");
    co_return watch_end::failed;
  }
  next_backoff_ = options_.backoff_initial;
  if (!answer.error.empty()) {
    fail("watch " + target + ": " + answer.error);
    co_return watch_end::failed;
  }
  if (pending.find_first_not_of(" \t\r\n") != std::string::npos) {
    fail("watch " + target + ": it ended in the middle of a line: " + excerpt(pending));
    co_return watch_end::failed;
  }
  co_return watch_end::expired;
}

asio::awaitable<void> k8s_informer::backoff() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(next_backoff_);
  next_backoff_ = std::min(next_backoff_ * 2, options_.backoff_max);
  co_await timer.async_wait(asio::use_awaitable);  // (cancelled: throws, which ends run())
}

asio::awaitable<void> k8s_informer::run() {
  for (;;) {
    bool listed = co_await list();
    if (!listed) {
      co_await backoff();
      continue;
    }
    // (the backoff starts again once a watch ran well: a list alone may be followed by a 410 at once)
    const auto listed_at = std::chrono::steady_clock::now();
    for (;;) {
      watch_end end = co_await watch();
      if (end == watch_end::gone) {
        log::info("kubernetes: {}: resourceVersion {} is gone (410): listing again", options_.resource.plural,
                  stats().resource_version);
        // A version gone right after the list that gave it (a cache in front of the API server being
        // rebuilt): listing again at once would loop, as client-go's backoff manager keeps it from doing.
        if (std::chrono::steady_clock::now() - listed_at < std::chrono::seconds(1)) co_await backoff();
        break;
      }
      if (end == watch_end::broken) {
        co_await backoff();
        break;
      }
      if (end == watch_end::failed) co_await backoff();
    }
  }
}

}  // namespace vane::control
