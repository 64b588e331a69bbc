// vane-fake-apiserver: a fake Kubernetes API server of our own for tests,
// over HTTPS (common/https_server.hpp), on one thread. Storage and write rules:
// tests/support/fake_apiserver_store.hpp. Here: the paths, bearer tokens,
// list and watch, and the control endpoints a test drives it with.
//
//   vane-fake-apiserver --cert FILE --key FILE [--token TOKEN] [--listen ADDRESS:PORT]
//
// prints "fake-apiserver listening on ADDRESS:PORT" once it serves.
//
// Watches (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes):
// ?watch=true&resourceVersion=RV sends every change after RV, then the
// changes as they happen, one JSON event per line in a chunked body; without
// RV (or "0") the current objects first, as ADDED. An RV the history no
// longer reaches is answered by an ERROR event with a 410 Status, as the real
// server does. timeoutSeconds ends the watch; allowWatchBookmarks=true lets
// POST /fake/bookmark send BOOKMARK events (only metadata.resourceVersion in
// the object, as documented in "Watch bookmarks").
//
// Control endpoints (no token needed):
//   PUT  /fake/token                the token accepted from now on (the body)
//   POST /fake/bookmark             a BOOKMARK now on every watch that allows them
//   POST /fake/compact              the history is forgotten up to now
//   POST /fake/expire-watches       compact, and end every open watch with an ERROR event, code 410
//   POST /fake/fail-watches?count=N the next N watch requests are answered 410 Gone as an HTTP status
//   POST /fake/end-watches          end every open watch as its timeout would
//   POST /fake/hold-watches         new watch requests wait (unanswered) until ...
//   POST /fake/release-watches      ... this, then are answered as the store is then
//   GET  /fake/requests             [{"method","target","token"}] of every API request so far
//   GET  /fake/watches              {"open": N, "held": M}
//
// Deployments have no controller here: their status is what a test makes it.
//   POST /fake/rollout?namespace=NS&name=NAME   the Deployment's rollout completes now: its status says
//                                   observedGeneration = generation and spec.replicas replicas updated,
//                                   ready and available (what `kubectl rollout status` waits for)
//   PUT  /fake/rollouts             body "auto": from now on every write of a Deployment is followed by
//                                   that completion; "manual" (the default): only /fake/rollout does it
//   POST /fake/conflict?path=PATH   the next PUT to PATH (an object's path) meets a concurrent write
//                                   first (an annotation set by "another client"), so the resourceVersion
//                                   it names is stale and it is refused 409 Conflict, as a real race would
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <iostream>
#include <list>
#include <memory>
#include <set>
#include <string>

#include "common/address.hpp"
#include "common/https_server.hpp"
#include "tests/support/fake_apiserver_store.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
using namespace vane::test::fake_api;
using tcp = asio::ip::tcp;

namespace {

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    out[percent_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

struct watcher {
  explicit watcher(const asio::any_io_executor& ex) : wake(ex) {}
  std::string resource_type, ns;
  std::map<std::string, std::string> selector;
  bool bookmarks = false;
  std::chrono::steady_clock::time_point end;
  std::deque<std::string> lines;
  bool closing = false;
  asio::steady_timer wake;

  void push(const std::string& type, const json::object& object) {
    lines.push_back(json::serialize(json::object{{"type", type}, {"object", object}}) + "\n");
    wake.cancel();
  }
};

struct fake_server {
  explicit fake_server(const asio::any_io_executor& ex) : ex_(ex), release_(ex) {
    release_.expires_at(asio::steady_timer::time_point::max());
    store_.on_change = [this](const change& c) {
      for (auto& w : live())
        if (w->resource_type == c.resource_type && matches(*w, c.object)) w->push(c.type, c.object);
    };
  }

  asio::awaitable<vane::http_server_reply> handle(vane::http_server_request req) {
    std::string_view target = req.target;
    auto q = target.find('?');
    std::string path(target.substr(0, q));
    auto query = parse_query(q == std::string_view::npos ? "" : target.substr(q + 1));
    if (path.starts_with("/fake/")) co_return control(req.method, path, query, req.body);

    std::string token;
    if (req.authorization.starts_with("Bearer ")) token = std::string(req.authorization.substr(7));
    requests_.push_back(json::object{{"method", req.method}, {"target", req.target}, {"token", token}});
    if (token != token_) co_return answer(status_reply(401, "Unauthorized", "Unauthorized"));

    auto p = parse_path(path);
    if (!p) co_return answer(status_reply(404, "NotFound", "the server could not find the requested resource"));
    auto selector = parse_selector(query["labelSelector"]);
    if (!selector) co_return answer(status_reply(400, "BadRequest", "the fake takes only label=value selectors"));
    if (req.method == "GET" && p->name.empty()) {
      if (query["watch"] == "true" || query["watch"] == "1") {
        // A held watch is answered after the release, from the store as it is then.
        ++held_;
        while (hold_) co_await release_.async_wait(asio::as_tuple(asio::use_awaitable));
        --held_;
        co_return watch(*p, *selector, query);
      }
      co_return answer(store_.list(*p, *selector));
    }
    if (!p->subresource.empty() && p->subresource != "status")
      co_return answer(status_reply(404, "NotFound", "no subresource " + p->subresource));
    if (p->subresource == "status" && !p->has_status())
      co_return answer(status_reply(404, "NotFound", p->plural + " have no status subresource"));
    if (req.method == "GET") co_return answer(store_.get(*p));
    if (req.method == "PUT" && conflicts_.erase(path) > 0) concurrent_write(*p);
    reply written;
    if (req.method == "POST" && p->name.empty())
      written = store_.create(*p, req.body);
    else if (req.method == "PUT")
      written = store_.update(*p, req.body);
    else if (req.method == "PATCH")
      written = store_.patch(*p, req.content_type, req.body);
    if ((req.method == "POST" && p->name.empty()) || req.method == "PUT" || req.method == "PATCH") {
      if (auto_rollouts_ && written.status / 100 == 2 && p->type() == "apps/deployments" && p->subresource.empty()) {
        const json::value* name = written.body.is_object() ? written.body.as_object().if_contains("metadata") : nullptr;
        if (name && name->is_object()) name = name->as_object().if_contains("name");
        if (name && name->is_string()) complete_rollout(p->ns, std::string(name->as_string()));
      }
      co_return answer(written);
    }
    if (req.method == "DELETE") co_return answer(store_.remove(*p));
    co_return answer(status_reply(405, "MethodNotAllowed", "the server does not allow this method"));
  }

  std::string token_;

 private:
  static vane::http_server_reply answer(const reply& r) {
    vane::http_server_reply out;
    out.status = r.status;
    out.body = json::serialize(r.body) + "\n";
    return out;
  }

  // The Deployment's rollout done, as its controller would say in status.
  reply complete_rollout(const std::string& ns, const std::string& name) {
    resource_path p{"apps", "v1", "deployments", ns, name, "status"};
    reply current = store_.get(p);
    if (current.status != 200) return current;
    json::object d = current.body.as_object();
    std::int64_t replicas = 1, generation = 0;
    if (auto* spec = d["spec"].if_object(); spec && spec->contains("replicas") && spec->at("replicas").is_int64())
      replicas = spec->at("replicas").as_int64();
    if (auto* m = d["metadata"].if_object(); m && m->contains("generation") && m->at("generation").is_int64())
      generation = m->at("generation").as_int64();
    d["status"] = json::object{
        {"observedGeneration", generation},
        {"replicas", replicas},
        {"updatedReplicas", replicas},
        {"readyReplicas", replicas},
        {"availableReplicas", replicas},
        {"conditions",
         json::array{json::object{{"type", "Available"}, {"status", "True"}},
                     json::object{{"type", "Progressing"}, {"status", "True"}, {"reason", "NewReplicaSetAvailable"}}}}};
    return store_.update(p, json::serialize(d));
  }

  // "Another client" writes the object: an annotation with a counter, so that its resourceVersion moves.
  void concurrent_write(const resource_path& p) {
    std::string patch = R"({"metadata":{"annotations":{"fake.vane.dev/concurrent-write":")" +
                        std::to_string(++concurrent_writes_) + "\"}}}";
    resource_path main = p;
    main.subresource.clear();
    store_.patch(main, "application/merge-patch+json", patch);
  }

  static bool matches(const watcher& w, const json::object& object) {
    if (!w.ns.empty()) {
      auto m = object.find("metadata");
      if (m == object.end() || !m->value().is_object()) return false;
      auto ns = m->value().as_object().find("namespace");
      if (ns == m->value().as_object().end() || ns->value() != json::value(w.ns)) return false;
    }
    return selected(object, w.selector);
  }

  // The open watches (those whose connection is gone drop out).
  std::vector<std::shared_ptr<watcher>> live() {
    std::vector<std::shared_ptr<watcher>> out;
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      if (auto w = it->lock()) {
        out.push_back(std::move(w));
        ++it;
      } else {
        it = watchers_.erase(it);
      }
    }
    return out;
  }

  json::object bookmark(const std::string& resource_type) const {
    return json::object{{"kind", store_.kind_of(resource_type)},
                        {"metadata", json::object{{"resourceVersion", std::to_string(store_.version())}}}};
  }

  static json::object gone_status() {
    return status_reply(410, "Expired", "too old resource version").body.as_object();
  }

  vane::http_server_reply watch(const resource_path& p, const std::map<std::string, std::string>& selector,
                                std::map<std::string, std::string>& query) {
    if (fail_watches_ > 0) {
      --fail_watches_;
      return answer(status_reply(410, "Gone", "too old resource version"));
    }
    auto w = std::make_shared<watcher>(ex_);
    w->resource_type = p.type();
    w->ns = p.ns;
    w->selector = selector;
    w->bookmarks = query["allowWatchBookmarks"] == "true";
    long seconds = query["timeoutSeconds"].empty() ? 1800 : std::stol(query["timeoutSeconds"]);
    w->end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    const std::string& rv = query["resourceVersion"];
    if (rv.empty() || rv == "0") {
      for (const auto* object : store_.objects(w->resource_type))
        if (matches(*w, *object)) w->push("ADDED", *object);
    } else {
      auto changes = store_.changes_since(w->resource_type, std::stoull(rv));
      if (!changes) {
        w->push("ERROR", gone_status());
        w->closing = true;
      } else {
        for (const auto* c : *changes)
          if (matches(*w, c->object)) w->push(c->type, c->object);
      }
    }
    watchers_.push_back(w);
    vane::http_server_reply out;
    out.stream = [w]() -> asio::awaitable<std::optional<std::string>> {
      for (;;) {
        if (!w->lines.empty()) {
          std::string piece;
          while (!w->lines.empty()) {
            piece += w->lines.front();
            w->lines.pop_front();
          }
          co_return piece;
        }
        if (w->closing || std::chrono::steady_clock::now() >= w->end) co_return std::nullopt;
        w->wake.expires_at(w->end);
        co_await w->wake.async_wait(asio::as_tuple(asio::use_awaitable));
      }
    };
    return out;
  }

  vane::http_server_reply control(std::string_view method, const std::string& path,
                                  std::map<std::string, std::string>& query, std::string_view body) {
    vane::http_server_reply ok;
    ok.body = "{}\n";
    if (method == "PUT" && path == "/fake/token") {
      token_ = std::string(body);
      return ok;
    }
    if (method == "POST" && path == "/fake/bookmark") {
      for (auto& w : live())
        if (w->bookmarks) w->push("BOOKMARK", bookmark(w->resource_type));
      return ok;
    }
    if (method == "POST" && path == "/fake/compact") {
      store_.compact();
      return ok;
    }
    if (method == "POST" && path == "/fake/expire-watches") {
      store_.compact();
      for (auto& w : live()) {
        w->push("ERROR", gone_status());
        w->closing = true;
      }
      return ok;
    }
    if (method == "POST" && path == "/fake/fail-watches") {
      fail_watches_ = query["count"].empty() ? 1 : std::stoi(query["count"]);
      return ok;
    }
    if (method == "POST" && path == "/fake/end-watches") {
      for (auto& w : live()) {
        w->closing = true;
        w->wake.cancel();
      }
      return ok;
    }
    if (method == "POST" && path == "/fake/hold-watches") {
      hold_ = true;
      return ok;
    }
    if (method == "POST" && path == "/fake/release-watches") {
      hold_ = false;
      release_.cancel();
      return ok;
    }
    if (method == "POST" && path == "/fake/rollout") {
      reply r = complete_rollout(query["namespace"], query["name"]);
      return answer(r);
    }
    if (method == "PUT" && path == "/fake/rollouts") {
      auto_rollouts_ = body == "auto";
      return ok;
    }
    if (method == "POST" && path == "/fake/conflict") {
      conflicts_.insert(query["path"]);
      return ok;
    }
    if (method == "GET" && path == "/fake/requests") {
      ok.body = json::serialize(requests_) + "\n";
      return ok;
    }
    if (method == "GET" && path == "/fake/watches") {
      ok.body = json::serialize(json::object{{"open", live().size()}, {"held", held_}}) + "\n";
      return ok;
    }
    return answer(status_reply(404, "NotFound", "no control endpoint " + std::string(method) + " " + path));
  }

  asio::any_io_executor ex_;
  store store_;
  std::list<std::weak_ptr<watcher>> watchers_;
  json::array requests_;
  int fail_watches_ = 0;
  bool auto_rollouts_ = false;
  std::set<std::string> conflicts_;  // paths whose next PUT meets a concurrent write
  int concurrent_writes_ = 0;
  bool hold_ = false;
  int held_ = 0;
  asio::steady_timer release_;  // cancelled to release held watches
};

}  // namespace

namespace {

int serve(int argc, char** argv) {
  std::string cert, key, token, listen = "127.0.0.1:0";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--cert")
      cert = value;
    else if (flag == "--key")
      key = value;
    else if (flag == "--token")
      token = value;
    else if (flag == "--listen")
      listen = value;
    else {
      std::cerr << "vane-fake-apiserver: unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (cert.empty() || key.empty()) {
    std::cerr << "usage: vane-fake-apiserver --cert FILE --key FILE [--token TOKEN] [--listen ADDRESS:PORT]\n";
    return 2;
  }
  auto files = std::make_shared<vane::tls_server_files>(cert, key);
  std::string error;
  if (!files->load(error)) {
    std::cerr << "vane-fake-apiserver: " << error << "\n";
    return 1;
  }
  auto at = vane::parse_host_port(listen);
  if (!at) {
    std::cerr << "vane-fake-apiserver: not an address: " << listen << "\n";
    return 2;
  }
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address(at->host), at->port));
  auto server = std::make_shared<fake_server>(io.get_executor());
  server->token_ = token;
  vane::http_server_options options;
  options.server = "vane-fake-apiserver";
  options.log_name = "fake-apiserver";
  options.body_limit = 3 << 20;  // etcd's request limit is about 1.5 MiB; a little more
  asio::co_spawn(io,
                 vane::serve_https(
                     acceptor, options, [server](vane::http_server_request r) { return server->handle(r); }, files),
                 asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  auto bound = acceptor.local_endpoint();
  std::cout << "fake-apiserver listening on " << vane::host_port{bound.address().to_string(), bound.port()}.to_string()
            << std::endl;
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return serve(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "vane-fake-apiserver: " << e.what() << "\n";
    return 1;
  }
}
