#include "control/leader_election.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <future>
#include <thread>

#include "common/log.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

using k8s_api::leases;

// client-go's wait.JitterUntil factor for the acquire loop, and the bound of the renew deadline.
constexpr double jitter_factor = 1.2;

std::int64_t whole_seconds(duration d) {
  auto s = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return std::max<std::int64_t>(1, (s + 999) / 1000);  // leaseDurationSeconds is whole seconds, at least 1
}

std::int64_t member_int(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return 0;
}

std::string member_text(const json::object& o, std::string_view key) {
  auto v = member_string(o, key);
  return v ? std::string(*v) : std::string();
}

}  // namespace

std::string check_leader_election_options(const leader_election_options& o) {
  if (o.retry_period <= duration::zero()) return "the retry period must be more than 0";
  if (o.lease_duration <= o.renew_deadline) return "the lease duration must be longer than the renew deadline";
  auto bound = std::chrono::duration_cast<duration>(o.retry_period * jitter_factor);
  if (o.renew_deadline <= bound) return "the renew deadline must be longer than 1.2 times the retry period";
  if (o.namespace_name.empty()) return "no namespace for the Lease";
  if (o.name.empty()) return "no name for the Lease";
  return {};
}

std::string leader_identity() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  std::random_device rd;
  std::uint64_t suffix = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  std::string name = host.data();
  return fmt::format("{}_{:016x}", name.empty() ? "vane-control" : name, suffix);
}

lease_record read_lease_record(const json::object& lease) {
  lease_record r;
  const json::object* spec = member_object(lease, "spec");
  if (!spec) return r;
  r.holder = member_text(*spec, "holderIdentity");
  r.duration_seconds = member_int(*spec, "leaseDurationSeconds");
  r.acquire_time = member_text(*spec, "acquireTime");
  r.renew_time = member_text(*spec, "renewTime");
  r.transitions = member_int(*spec, "leaseTransitions");
  return r;
}

void write_lease_record(json::object& lease, const lease_record& r) {
  json::object spec;
  if (auto* old = lease.if_contains("spec"); old && old->is_object()) spec = old->as_object();
  if (r.holder.empty())
    spec.erase("holderIdentity");
  else
    spec["holderIdentity"] = r.holder;
  spec["leaseDurationSeconds"] = r.duration_seconds;
  spec["acquireTime"] = r.acquire_time;
  spec["renewTime"] = r.renew_time;
  spec["leaseTransitions"] = r.transitions;
  lease["spec"] = std::move(spec);
}

std::string micro_time(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::time_point_cast<std::chrono::microseconds>(t);
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(us);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06d}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(secs)),
                     (us - secs).count());
}

lease_plan plan_lease(const std::optional<lease_record>& current, lease_observation& seen, const std::string& me,
                      steady::time_point now, const std::string& wall_now, duration lease_duration) {
  lease_plan plan;
  plan.record.holder = me;
  plan.record.duration_seconds = whole_seconds(lease_duration);
  plan.record.acquire_time = wall_now;
  plan.record.renew_time = wall_now;
  if (!current) {
    plan.write = true;  // no Lease yet: create it
    return plan;
  }
  // The validity of another's record runs from when it was last seen to change, here.
  if (!seen.record || *seen.record != *current) {
    seen.record = current;
    seen.at = now;
  }
  if (!current->holder.empty() && current->holder != me &&
      seen.at + std::chrono::seconds(current->duration_seconds) > now) {
    plan.held_by = current->holder;
    return plan;
  }
  if (current->holder == me) {
    plan.record.acquire_time = current->acquire_time;  // a renewal
    plan.record.transitions = current->transitions;
  } else {
    plan.record.transitions = current->transitions + 1;  // a takeover (or a released Lease taken)
  }
  plan.write = true;
  return plan;
}

leader_elector::leader_elector(std::shared_ptr<k8s_client> client, leader_election_options options)
    : client_(std::move(client)),
      options_(std::move(options)),
      timer_(client_->executor()),
      random_(std::random_device{}()) {
  if (options_.identity.empty()) options_.identity = leader_identity();
}

void leader_elector::say(std::string what, bool warning) {
  if (what == said_) return;
  if (warning)
    log::warn("leader election: {}", what);
  else
    log::info("leader election: {}", what);
  said_ = std::move(what);
}

asio::awaitable<void> leader_elector::pause(duration d) {
  if (stopping_) co_return;
  timer_.expires_after(d);
  co_await timer_.async_wait(nothrow);
}

void leader_elector::shutdown() {
  stopping_ = true;
  timer_.cancel();
}

asio::awaitable<bool> leader_elector::try_acquire_or_renew(steady::time_point deadline) {
  auto left = deadline - steady::now();
  if (left <= duration::zero()) co_return false;
  client_->timeout = std::chrono::duration_cast<duration>(left);
  const std::string path = leases.path(options_.namespace_name, options_.name);
  std::string method = "GET";
  http_result got = co_await client_->call(method, path);
  const std::string where = fmt::format("Lease {}/{}", options_.namespace_name, options_.name);
  json::object lease;
  std::optional<lease_record> current;
  if (got.status == 200) {
    auto parsed = parse_json_object(got.body);
    if (!parsed) {
      say(fmt::format("{}: the answer is {}", where, parsed.why), true);
      co_return false;
    }
    lease = std::move(*parsed.value);
    current = read_lease_record(lease);
  } else if (got.status != 404) {
    say(fmt::format("cannot read {}: {}", where, k8s_answer_text(got)), true);
    co_return false;
  }
  lease_plan plan = plan_lease(current, seen_, options_.identity, steady::now(),
                               micro_time(std::chrono::system_clock::now()), options_.lease_duration);
  if (!plan.write) {
    if (leading_) taken_by_ = plan.held_by;
    say(fmt::format("{} is held by {}; waiting (identity {})", where, plan.held_by, options_.identity));
    co_return false;
  }
  if (!current)
    lease = json::object{{"apiVersion", "coordination.k8s.io/v1"},
                         {"kind", "Lease"},
                         {"metadata", json::object{{"name", options_.name}, {"namespace", options_.namespace_name}}}};
  write_lease_record(lease, plan.record);
  left = deadline - steady::now();
  if (left <= duration::zero()) co_return false;
  client_->timeout = std::chrono::duration_cast<duration>(left);
  // A PUT carries the resourceVersion read: 409 when another wrote in between.
  method = current ? "PUT" : "POST";
  std::string target = current ? path : leases.path(options_.namespace_name);
  std::string body = json::serialize(lease);
  http_result put = co_await client_->call(method, target, body);
  if (put.status / 100 != 2) {
    if (put.status == 409)
      say(fmt::format("{}: another candidate wrote it first ({}); reading it again", where, k8s_answer_text(put)));
    else
      say(fmt::format("cannot write {}: {}", where, k8s_answer_text(put)), true);
    co_return false;
  }
  auto written = parse_json_object(put.body);
  if (!written) {
    say(fmt::format("{}: the answer to the write is {}", where, written.why), true);
    co_return false;
  }
  lease_ = std::move(*written.value);
  seen_.record = plan.record;
  seen_.at = steady::now();
  co_return true;
}

asio::awaitable<void> leader_elector::release() {
  if (!leading_.load() || !lease_) co_return;
  leading_ = false;
  lease_record r = seen_.record.value_or(lease_record{});
  r.holder.clear();
  r.duration_seconds = 1;
  r.acquire_time = r.renew_time = micro_time(std::chrono::system_clock::now());
  json::object lease = *lease_;
  write_lease_record(lease, r);
  client_->timeout = std::min<duration>(options_.renew_deadline, std::chrono::seconds(5));
  std::string method = "PUT", target = leases.path(options_.namespace_name, options_.name),
              body = json::serialize(lease);
  http_result put = co_await client_->call(method, target, body);
  if (put.status == 200)
    log::info("leader election: released Lease {}/{}", options_.namespace_name, options_.name);
  else
    log::warn("leader election: could not release Lease {}/{}: {}", options_.namespace_name, options_.name,
              k8s_answer_text(put));
}

asio::awaitable<void> leader_elector::run() {
  log::info("leader election: candidate {} for Lease {}/{} (lease {}, renew deadline {}, retry period {})",
            options_.identity, options_.namespace_name, options_.name, format_duration(options_.lease_duration),
            format_duration(options_.renew_deadline), format_duration(options_.retry_period));
  // Acquire: every retry period, jittered as client-go's (wait.JitterUntil, factor 1.2).
  std::uniform_real_distribution<double> jitter(0.0, jitter_factor);
  for (;;) {
    if (stopping_) co_return;
    bool acquired = co_await try_acquire_or_renew(steady::now() + options_.renew_deadline);
    if (acquired) break;
    co_await pause(std::chrono::duration_cast<duration>(options_.retry_period * (1.0 + jitter(random_))));
  }
  leading_ = true;
  say(fmt::format("leading: Lease {}/{} acquired by {}", options_.namespace_name, options_.name, options_.identity));
  if (on_started_leading) on_started_leading();
  // Renew: each round retries until the renew deadline; a round that fails ends the leadership, and so
  // does another holder seen in the Lease (this process was stopped for longer than the lease: another
  // took over meanwhile), at once.
  taken_by_.clear();
  for (;;) {
    co_await pause(options_.retry_period);
    if (stopping_) break;
    const auto round_deadline = steady::now() + options_.renew_deadline;
    bool renewed = false;
    for (;;) {
      renewed = co_await try_acquire_or_renew(round_deadline);
      if (renewed || stopping_ || !taken_by_.empty() || steady::now() >= round_deadline) break;
      co_await pause(std::min<duration>(options_.retry_period,
                                        std::chrono::duration_cast<duration>(round_deadline - steady::now())));
      if (steady::now() >= round_deadline) break;
    }
    if (renewed) continue;
    if (stopping_) break;
    leading_ = false;
    log::error("leader election: lost Lease {}/{}: {}", options_.namespace_name, options_.name,
               taken_by_.empty()
                   ? fmt::format("not renewed within {} ({})", format_duration(options_.renew_deadline), said_)
                   : taken_by_ + " holds it now");
    if (on_stopped_leading) on_stopped_leading();
    co_return;
  }
  co_await release();
}

}  // namespace vane::control

namespace vane::control {

struct leader_election_thread::running {
  asio::io_context io{1};
  std::shared_ptr<k8s_client> client;
  std::unique_ptr<leader_elector> elector;
  std::future<void> done;
  std::thread thread;
};

leader_election_thread::leader_election_thread(k8s_config config, leader_election_options options)
    : config_(std::move(config)), options_(std::move(options)) {
  if (options_.identity.empty()) options_.identity = leader_identity();
  identity_ = options_.identity;
}

leader_election_thread::~leader_election_thread() {
  try {
    shutdown();
  } catch (const std::exception& e) {
    log::error("leader election: {}", e.what());
  }
}

bool leader_election_thread::start(std::function<void()> started, const std::function<void()>& stopped,
                                   std::string& error) {
  auto r = std::make_unique<running>();
  r->client = k8s_client::make(r->io.get_executor(), config_, error);
  if (!r->client) return false;
  r->elector = std::make_unique<leader_elector>(r->client, options_);
  r->elector->on_started_leading = std::move(started);
  r->elector->on_stopped_leading = stopped;
  leader_elector* elector = r->elector.get();
  auto guarded = [elector, stopped]() -> asio::awaitable<void> {
    try {
      co_await elector->run();
    } catch (const std::exception& e) {
      log::error("leader election ended by an exception: {}", e.what());
      if (elector->leading() && stopped) stopped();
    }
  };
  r->done = asio::co_spawn(r->io, std::move(guarded), asio::use_future);  // the callable, kept alive by co_spawn
  running* raw = r.get();
  r->thread = std::thread([raw] { raw->io.run(); });
  run_ = std::move(r);
  return true;
}

void leader_election_thread::shutdown(duration timeout) {
  if (!run_) return;
  leader_elector* elector = run_->elector.get();
  asio::post(run_->io, [elector] { elector->shutdown(); });
  // A renewal under way may take up to the renew deadline before the release can start.
  const duration wait = options_.renew_deadline + timeout;
  if (run_->done.wait_for(wait) != std::future_status::ready)
    log::warn("leader election: the Lease was not released within {}", format_duration(wait));
  run_->io.stop();
  run_->thread.join();
  run_.reset();
}

bool leader_election_thread::leading() const { return run_ && run_->elector->leading(); }

}  // namespace vane::control
