#pragma once
// Leader election on a coordination.k8s.io/v1 Lease, with client-go's
// algorithm (tools/leaderelection): a candidate reads the Lease every retry
// period; a record held by another is valid for leaseDurationSeconds counted
// from the local time this candidate last saw the record change (never from
// the remote renewTime: the clocks of two machines are not compared); an
// expired or released record is taken (leaseTransitions + 1); the leader
// renews it, and gives up leadership when it cannot renew within the renew
// deadline; on shutdown it releases it (holderIdentity empty,
// leaseDurationSeconds 1), so that a standby takes over at its next retry.
// Every write names the resourceVersion read: a 409 is a lost race, read
// again at the next try.
//
// The Lease: https://kubernetes.io/docs/concepts/architecture/leases/
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "common/units.hpp"
#include "control/k8s_client.hpp"

namespace vane::control {

struct leader_election_options {
  std::string namespace_name;                          // of the Lease
  std::string name = "vane-control-leader";            // --leader-election-id
  std::string identity;                                // leader_identity() when empty
  duration lease_duration = std::chrono::seconds(15);  // controller-runtime's defaults
  duration renew_deadline = std::chrono::seconds(10);
  duration retry_period = std::chrono::seconds(2);
};

// "" or why the durations cannot work (client-go's checks: lease > renew deadline > retry period * 1.2).
std::string check_leader_election_options(const leader_election_options& o);

// The host name, "_", and 16 random hex digits (as client-go users build it:
// two processes on one host are two candidates).
std::string leader_identity();

// The Lease's spec, as this unit reads and writes it.
struct lease_record {
  std::string holder;                    // spec.holderIdentity; "" when released
  std::int64_t duration_seconds = 0;     // spec.leaseDurationSeconds
  std::string acquire_time, renew_time;  // MicroTime text (RFC 3339 with microseconds)
  std::int64_t transitions = 0;          // spec.leaseTransitions
  bool operator==(const lease_record&) const = default;
};
// Reads spec; a missing or mistyped field is left at its zero value (a record that
// names no holder can be taken).
lease_record read_lease_record(const boost::json::object& lease);
// Writes the record into the Lease's spec.
void write_lease_record(boost::json::object& lease, const lease_record& r);
// The time as a MicroTime: 2026-11-30T17:04:14.123456Z.
std::string micro_time(std::chrono::system_clock::time_point t);

// The decision of one try (client-go's tryAcquireOrRenew, without the calls):
// what the record was last seen to be and since when, locally.
struct lease_observation {
  std::optional<lease_record> record;
  std::chrono::steady_clock::time_point at{};
};
struct lease_plan {
  bool write = false;  // write `record` (create it when there was no Lease)
  lease_record record;
  std::string held_by;  // when not: the holder whose record is still valid
};
lease_plan plan_lease(const std::optional<lease_record>& current, lease_observation& seen, const std::string& me,
                      std::chrono::steady_clock::time_point now, const std::string& wall_now, duration lease_duration);

class leader_elector {
 public:
  leader_elector(std::shared_ptr<k8s_client> client, leader_election_options options);

  // Called on the client's executor. started: this process leads now (do the
  // work); stopped: it could not renew within the renew deadline and leads no
  // more (stop the work at once: another may lead already). Not called for a release.
  std::function<void()> on_started_leading, on_stopped_leading;

  // Tries to acquire every retry period (with jitter), then renews until the
  // lease is lost or shutdown() is called; then, when it leads, releases the
  // Lease. Ends after a loss (on_stopped_leading) or a shutdown.
  boost::asio::awaitable<void> run();
  // From the client's executor: run() stops trying and releases what it holds, then ends.
  void shutdown();

  bool leading() const { return leading_.load(); }  // from any thread
  const std::string& identity() const { return options_.identity; }
  const leader_election_options& options() const { return options_; }

 private:
  boost::asio::awaitable<bool> try_acquire_or_renew(std::chrono::steady_clock::time_point deadline);
  boost::asio::awaitable<void> release();
  boost::asio::awaitable<void> pause(duration d);
  void say(std::string what, bool warning = false);

  std::shared_ptr<k8s_client> client_;
  leader_election_options options_;
  boost::asio::steady_timer timer_;
  std::minstd_rand random_;
  lease_observation seen_;
  std::optional<boost::json::object> lease_;  // the Lease as last read or written (its resourceVersion)
  std::atomic<bool> leading_{false};
  std::string taken_by_;  // while leading: another holder seen in the Lease (the leadership is over)
  bool stopping_ = false;
  std::string said_;
};

}  // namespace vane::control

namespace vane::control {

// The elector on a thread of its own, with a client of its own: the
// controller's thread can be stopped (its io_context's stop()) while this one
// still releases the Lease, and a controller thread that is busy never delays a renewal.
class leader_election_thread {
 public:
  leader_election_thread(k8s_config config, leader_election_options options);
  ~leader_election_thread();
  leader_election_thread(const leader_election_thread&) = delete;
  leader_election_thread& operator=(const leader_election_thread&) = delete;

  // Starts the elector; `started` and `stopped` are its on_started_leading and
  // on_stopped_leading (an exception that ends it while leading is a stop too),
  // called on its thread. false and `error` when the client cannot be made.
  bool start(std::function<void()> started, const std::function<void()>& stopped, std::string& error);
  // Stops trying, releases the Lease when it leads, waits for that at most `timeout`, and joins.
  void shutdown(duration timeout = std::chrono::seconds(5));
  bool leading() const;
  std::string identity() const { return identity_; }

 private:
  k8s_config config_;
  leader_election_options options_;
  std::string identity_;
  struct running;
  std::unique_ptr<running> run_;
};

}  // namespace vane::control
