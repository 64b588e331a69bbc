#include "control/k8s_mode.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "common/log.hpp"
#include "control/k8s_client.hpp"
#include "control/k8s_config.hpp"
#include "control/k8s_informer.hpp"
#include "control/k8s_objects.hpp"
#include "control/parse.hpp"

namespace vane::control {

namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

namespace {

const k8s_resource& config_api(const std::string& kind) {
  return kind == "Secret" ? k8s_api::secrets : k8s_api::configmaps;
}

// An object read from the API server, or why not (status 404: it is not there).
struct read_result {
  int status = 0;
  json::object object;
  std::string why;
  bool ok() const { return status == 200; }
};

std::string metadata_name(const json::object& object) {
  const json::object* m = member_object(object, "metadata");
  return m ? std::string(member_string(*m, "name").value_or("")) : std::string();
}

bool analysing_or_waiting(canary_phase p) { return p == canary_phase::waiting || p == canary_phase::progressing; }

// What the cluster side keeps of one Canary, by NAME.NAMESPACE.
struct canary_cluster {
  std::string key;                    // NAMESPACE/NAME in the informer
  std::string uid;                    // of the object: another uid is another Canary of the same name
  std::string revision;               // the hash of the target's template and tracked configs
  std::string last_promoted;          // status.lastPromotedSpec
  json::object tracked;               // status.trackedConfigs
  std::vector<json::object> configs;  // the tracked ConfigMaps and Secrets, as last read
  std::vector<k8s::config_ref> tracked_refs;
  std::optional<steady::time_point> waiting_since;  // the canary's rollout has been awaited since
  std::string waiting_revision;                     // the revision it waits for
  std::string status_written;                       // the status last written (serialized)
};

class k8s_cluster final : public cluster_hooks {
 public:
  k8s_cluster(controller& ctl, std::shared_ptr<k8s_client> client, std::string ns)
      : ctl_(ctl), client_(std::move(client)), ns_(std::move(ns)), rebuild_later_(client_->executor()) {}

  void start() {
    canaries_ = informer(k8s_api::canaries);
    templates_ = informer(k8s_api::metrictemplates);
    providers_ = informer(k8s_api::alertproviders);
  }

  asio::awaitable<bool> before_tick(canary_record& c) override;
  asio::awaitable<void> after_tick(canary_record& c) override;
  asio::awaitable<workload_readiness> canary_ready(canary_record& c) override;
  asio::awaitable<bool> promote(canary_record& c) override;
  asio::awaitable<bool> primary_ready(canary_record& c) override;
  void event(canary_record& c, const std::string& message) override;

 private:
  std::unique_ptr<k8s_informer> informer(const k8s_resource& resource) {
    k8s_informer_options o;
    o.resource = resource;
    o.namespace_name = ns_;
    auto i = std::make_unique<k8s_informer>(client_, o, [this](k8s_change, const json::object&) { rebuild_soon(); });
    asio::co_spawn(client_->executor(), i->run(), [what = resource.plural](const std::exception_ptr& e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("kubernetes: {} informer ended by an exception: {}", what, ex.what());
      }
    });
    return i;
  }

  void rebuild();
  // The events of one read (a list gives each object as one) make one rebuild, after them: each
  // rebuild reads every Canary again.
  void rebuild_soon() {
    if (rebuild_posted_) return;
    rebuild_posted_ = true;
    asio::post(client_->executor(), [this, alive = std::weak_ptr<bool>(alive_)] {
      if (alive.expired()) return;  // (this one is gone)
      rebuild_posted_ = false;
      rebuild();
    });
  }
  bool rebuild_posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::optional<json::object> canary_object(const canary_record& c) const;
  asio::awaitable<read_result> get(const k8s_resource& r, std::string ns, std::string name);
  // Creates the object unless one of its name is there; false (with a note) when it could not.
  asio::awaitable<bool> ensure(canary_record& c, const k8s_resource& r, json::object object);
  std::optional<std::string> not_ours(const json::object& there, std::string_view kind, const std::string& ours) const;
  asio::awaitable<bool> ensure_services(canary_record& c, const json::object& target, const k8s::canary_extras& x);
  asio::awaitable<bool> scale(canary_record& c, const std::string& name, std::int64_t replicas);
  asio::awaitable<bool> initialize(canary_record& c, canary_cluster& k, const json::object& target,
                                   const k8s::canary_extras& x);
  asio::awaitable<bool> copy_configs(canary_record& c, canary_cluster& k, const k8s::canary_extras& x);
  // Whether <target>-primary has rolled out; why not goes to the status (`as_event`: as an Event).
  asio::awaitable<bool> primary_rolled_out(canary_record& c, const k8s::canary_extras& x, bool as_event);
  asio::awaitable<void> write_status(canary_record& c, canary_cluster& k);
  asio::awaitable<void> promote_hpa(canary_record& c, const k8s::canary_extras& x);
  asio::awaitable<void> send_events();

  controller& ctl_;
  std::shared_ptr<k8s_client> client_;
  std::string ns_;
  std::unique_ptr<k8s_informer> canaries_, templates_, providers_;
  std::map<std::string, canary_cluster> cluster_;  // by NAME.NAMESPACE
  asio::steady_timer rebuild_later_;
  std::string documents_key_;  // what the controller was last given
  // An Event to send, in order: a new one (POST), or the last one again (a merge patch of its count).
  struct pending_event {
    std::string ns, name;  // name: the Event to patch; "" for a new one
    json::object body;
  };
  std::vector<pending_event> events_;
  // The last Event of each canary: the same message again counts on it, as client-go's event correlator does.
  struct last_event {
    std::string name, message;
    std::int64_t count = 0;
  };
  std::map<std::string, last_event> last_events_;  // by NAME.NAMESPACE
  bool sending_ = false;
  std::uint64_t event_sequence_ = 0;
};

std::optional<json::object> k8s_cluster::canary_object(const canary_record& c) const {
  auto it = cluster_.find(c.spec.id());
  if (it == cluster_.end() || !canaries_) return std::nullopt;
  return canaries_->get(it->second.key);
}

// Every change of the three kinds: the documents again, given to the controller when a Canary's spec
// (its generation), a MetricTemplate or an AlertProvider changed. Status writes change neither.
void k8s_cluster::rebuild() {
  if (!canaries_ || !templates_ || !providers_) return;
  // A run's metrics and alerts name templates and providers: the canaries wait for their first list
  // (or its first failure, said in the log: a cluster without those CRDs still runs canaries).
  for (const auto* informer : {templates_.get(), providers_.get()}) {
    k8s_informer_stats st = informer->stats();
    if (!st.synced && st.failures == 0) {
      // An empty first list tells nothing to the handler: look again shortly.
      rebuild_later_.expires_after(std::chrono::milliseconds(100));
      rebuild_later_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) rebuild();
      });
      return;
    }
  }
  documents docs;
  std::map<std::string, run_state> seeds;
  std::set<std::string> restart;
  std::string key;
  for (const auto& object : canaries_->objects()) {
    const json::object* spec = member_object(object, "spec");
    if (!spec || member_string(*spec, "provider").value_or("") != "vane") continue;  // Flagger's, or another's
    const json::object* m = member_object(object, "metadata");
    std::string generation = m && m->contains("generation") ? json::serialize(m->at("generation")) : "";
    std::string uid = m ? std::string(member_string(*m, "uid").value_or("")) : "";
    key += fmt::format("canary {} {} {}\n", k8s_key(object), uid, generation);
    const std::size_t before = docs.canaries.size();
    parse_documents(k8s::document_text(object), "Canary " + k8s_key(object), docs);
    if (docs.canaries.size() == before) continue;
    canary_spec& s = docs.canaries.back();
    k8s::canary_extras x = k8s::read_extras(object);
    canary_cluster& k = cluster_[s.id()];
    if (!k.uid.empty() && k.uid != uid) {
      restart.insert(s.id());
      k = canary_cluster{};
    }
    k.uid = uid;
    k.key = k8s_key(object);
    s.revision = k.revision.empty() ? std::nullopt : std::optional<std::string>(k.revision);
    // The controller promotes by copying the template (no command or URL); the primary's rollout is
    // awaited within progressDeadlineSeconds.
    promote_spec p;
    p.timeout = std::chrono::seconds(x.progress_deadline_seconds);
    s.promote = p;
    const json::object* status = member_object(object, "status");
    std::string last_promoted;
    run_state& seed = seeds[s.id()] = k8s::state_from_status(status ? *status : json::object(), last_promoted);
    // stepWeights entries done, from the weight reached (the status keeps the weight, not the index).
    for (const auto& step : s.analysis.step_weights)
      if (step.weight <= seed.weight && seed.weight > 0) ++seed.steps;
    if (k.last_promoted.empty()) k.last_promoted = last_promoted;
    if (status && k.tracked.empty())
      if (const json::object* t = member_object(*status, "trackedConfigs")) k.tracked = *t;
  }
  for (const auto* informer : {templates_.get(), providers_.get()})
    for (const auto& object : informer->objects()) {
      key += "doc " + k8s_key(object) + " " + k8s_resource_version(object) + "\n";
      parse_documents(k8s::document_text(object),
                      std::string(member_string(object, "kind").value_or("")) + " " + k8s_key(object), docs);
    }
  if (key == documents_key_) return;
  documents_key_ = key;
  for (const auto& e : docs.errors) log::error("kubernetes: {}", e.to_string());
  for (const auto& i : docs.ignored) log::debug("kubernetes: {}", i);
  ctl_.set_documents(std::move(docs), seeds, restart);
}

asio::awaitable<read_result> k8s_cluster::get(const k8s_resource& r, std::string ns, std::string name) {
  std::string method = "GET", target = r.path(ns, name);
  http_result answer = co_await client_->call(method, target);
  read_result out;
  out.status = answer.status;
  if (answer.status != 200) {
    out.why = fmt::format("GET {}: {}", target, k8s_answer_text(answer));
    co_return out;
  }
  auto object = parse_json_object(answer.body);
  if (!object) {
    out.status = 0;
    out.why = fmt::format("GET {}: {}", target, object.why);
    co_return out;
  }
  out.object = std::move(*object.value);
  co_return out;
}

// The uid of the Canary that owns an object ("" when none does).
std::string canary_owner(const json::object& o) {
  const json::object* meta = member_object(o, "metadata");
  const json::array* owners = meta ? member_array(*meta, "ownerReferences") : nullptr;
  if (owners)
    for (const auto& v : *owners)
      if (const auto* ref = v.if_object(); ref && member_string(*ref, "kind").value_or("") == "Canary")
        return std::string(member_string(*ref, "uid").value_or(""));
  return {};
}

// Why an object found where the Canary whose uid is `ours` wants one of its own is not taken as its own:
// on its way out (deletionTimestamp), or another Canary's — a leftover of a Canary deleted and made again,
// which the garbage collector deletes after the new one saw it (taken once it is gone and made again), or a
// live Canary's (two Canaries cannot share it). An object no Canary owns (made by hand) is taken.
std::optional<std::string> k8s_cluster::not_ours(const json::object& there, std::string_view kind,
                                                 const std::string& ours) const {
  const json::object* m = member_object(there, "metadata");
  const std::string what = fmt::format("{} {}.{}", kind, m ? member_string(*m, "name").value_or("") : "",
                                       m ? member_string(*m, "namespace").value_or("") : "");
  if (m && m->contains("deletionTimestamp")) return what + " is being deleted: waiting for it to go to make it again";
  const std::string owner = canary_owner(there);
  if (owner.empty() || ours.empty() || owner == ours) return std::nullopt;
  if (canaries_)
    for (const auto& other : canaries_->objects())
      if (const json::object* om = member_object(other, "metadata"); om && member_string(*om, "uid") == owner)
        return fmt::format("{} belongs to Canary {}.{}: two Canaries cannot share it", what,
                           member_string(*om, "name").value_or(""), member_string(*om, "namespace").value_or(""));
  return fmt::format(
      "{} belongs to another Canary (uid {}, this one's is {}): waiting for the garbage collector "
      "to delete it",
      what, owner, ours);
}

asio::awaitable<bool> k8s_cluster::ensure(canary_record& c, const k8s_resource& r, json::object object) {
  std::string name = metadata_name(object), ns = c.spec.ns;
  std::string method = "GET", target = r.path(ns, name);
  http_result answer = co_await client_->call(method, target);
  if (answer.status == 200) {
    const auto there = parse_json_object(answer.body);
    if (there) {
      if (auto why = not_ours(*there.value, member_string(object, "kind").value_or(""), canary_owner(object))) {
        ctl_.note(c, *why);
        co_return false;
      }
    }
    co_return true;
  }
  if (answer.status != 404) {
    ctl_.note(c, fmt::format("GET {}: {}", target, k8s_answer_text(answer)));
    co_return false;
  }
  method = "POST";
  target = r.path(ns);
  std::string body = json::serialize(object);
  answer = co_await client_->call(method, target, body);
  if (answer.status / 100 == 2 || answer.status == 409) {  // 409 AlreadyExists: made meanwhile
    log::info("{}: created {} {}.{}", c.spec.id(), std::string(member_string(object, "kind").value_or("")), name, ns);
    co_return true;
  }
  ctl_.note(c, fmt::format("POST {}: {}", target, k8s_answer_text(answer)));
  co_return false;
}

// A JSON merge patch of spec.replicas, as Flagger scales.
asio::awaitable<bool> k8s_cluster::scale(canary_record& c, const std::string& name, std::int64_t replicas) {
  std::string method = "PATCH", target = k8s_api::deployments.path(c.spec.ns, name),
              body = fmt::format(R"({{"spec":{{"replicas":{}}}}})", replicas), type = k8s_merge_patch;
  http_result answer = co_await client_->call(method, target, body, type);
  if (answer.status == 200) {
    log::info("{}: {}.{} scaled to {}", c.spec.id(), name, c.spec.ns, replicas);
    co_return true;
  }
  ctl_.note(c, fmt::format("PATCH {}: {}", target, k8s_answer_text(answer)));
  co_return false;
}

asio::awaitable<bool> k8s_cluster::before_tick(canary_record& c) {
  std::optional<json::object> object = canary_object(c);
  if (!object) co_return false;
  k8s::canary_extras x = k8s::read_extras(*object);
  canary_cluster& k = cluster_[c.spec.id()];
  read_result target = co_await get(k8s_api::deployments, x.ns, x.target);
  if (!target.ok()) {
    ctl_.note(c, fmt::format("target deployment {}.{}: {}", x.target, x.ns, target.why));
    co_return false;
  }
  if (!k8s::selector_label(target.object)) {
    ctl_.note(c, fmt::format("deployment {}.{}: spec.selector.matchLabels has no app, name or "
                             "app.kubernetes.io/name label",
                             x.target, x.ns));
    co_return false;
  }
  const json::object* spec = member_object(target.object, "spec");
  const json::object* pod_template = spec ? member_object(*spec, "template") : nullptr;
  if (!pod_template) {
    ctl_.note(c, fmt::format("deployment {}.{} has no spec.template", x.target, x.ns));
    co_return false;
  }
  std::vector<json::object> configs;
  std::vector<k8s::config_ref> refs;
  for (const auto& ref : k8s::config_refs(*pod_template)) {
    read_result config = co_await get(config_api(ref.kind), x.ns, ref.name);
    if (config.status == 404) continue;  // an optional reference; the kubelet says what is missing
    if (!config.ok()) {
      ctl_.note(c, config.why);
      co_return false;
    }
    if (!k8s::tracked(config.object)) continue;
    if (!config.object.contains("kind")) config.object["kind"] = ref.kind;
    configs.push_back(std::move(config.object));
    refs.push_back(ref);
  }
  k.revision = k8s::revision_hash(*pod_template, configs);
  k.tracked = k8s::tracked_configs(configs);
  k.configs = std::move(configs);
  k.tracked_refs = std::move(refs);
  c.spec.revision = k.revision;
  if (!c.state.initialized) {
    bool done = co_await initialize(c, k, target.object, x);
    co_return done;
  }
  // The Services route every request: one deleted (or left from a Canary made again) is made again at
  // each tick, as Flagger reconciles them. What keeps one from being made is noted; the run goes on.
  co_await ensure_services(c, target.object, x);
  co_return true;
}

// Flagger's initialization: config copies, <target>-primary, the HPA copy, the Services; once the
// primary has rolled out, the target scaled to 0. The run's first tick then says Initialization done.
asio::awaitable<bool> k8s_cluster::initialize(canary_record& c, canary_cluster& k, const json::object& target,
                                              const k8s::canary_extras& x) {
  if (!co_await copy_configs(c, k, x)) co_return false;
  json::object primary = k8s::primary_deployment(target, x, k.tracked_refs);
  if (!co_await ensure(c, k8s_api::deployments, primary)) co_return false;
  if (!x.autoscaler.empty()) {
    read_result hpa = co_await get(k8s_api::hpas, x.ns, x.autoscaler);
    if (!hpa.ok()) {
      ctl_.note(c, fmt::format("autoscalerRef {}.{}: {}", x.autoscaler, x.ns, hpa.why));
      co_return false;
    }
    json::object copy = k8s::primary_hpa(hpa.object, x);
    if (!co_await ensure(c, k8s_api::hpas, copy)) co_return false;
  }
  if (!co_await ensure_services(c, target, x)) co_return false;
  if (x.port <= 0) ctl_.note(c, "spec.service.port is not set: no Services made");
  if (!co_await primary_rolled_out(c, x, true)) co_return false;
  const std::int64_t zero = 0;
  if (k8s::spec_replicas(target) != 0 && !co_await scale(c, x.target, zero)) co_return false;
  k.last_promoted = k.revision;
  co_return true;
}

// The apex, -primary and -canary Services (none when spec.service.port is not set).
asio::awaitable<bool> k8s_cluster::ensure_services(canary_record& c, const json::object& target,
                                                   const k8s::canary_extras& x) {
  auto label = k8s::selector_label(target);
  if (x.port <= 0 || !label) co_return true;
  const std::string& l = label->first;
  const std::string& v = label->second;
  json::object apex = k8s::service(x.service, l, v + "-primary", x);
  json::object primary_svc = k8s::service(x.service + "-primary", l, v + "-primary", x);
  json::object canary_svc = k8s::service(x.service + "-canary", l, v, x);
  for (json::object* svc : {&apex, &primary_svc, &canary_svc})
    if (!co_await ensure(c, k8s_api::services, *svc)) co_return false;
  co_return true;
}

// The tracked configs' NAME-primary copies: made when missing, their data set to the target's.
asio::awaitable<bool> k8s_cluster::copy_configs(canary_record& c, canary_cluster& k, const k8s::canary_extras& x) {
  // A copy: k.configs may be replaced while a call below waits (the Canary read again, or made again).
  const std::vector<json::object> configs = k.configs;
  for (const auto& config : configs) {
    std::string kind(member_string(config, "kind").value_or(""));
    const json::object* m = member_object(config, "metadata");
    std::string name = std::string(m ? member_string(*m, "name").value_or("") : "") + "-primary";
    std::string target = config_api(kind).path(x.ns, name);
    std::optional<std::string> foreign;  // the copy there is not this Canary's (not_ours): not written
    const std::string ours = k.uid;
    std::function<bool(json::object&)> change = [&config, &foreign, &ours, &kind, this](json::object& copy) {
      foreign = not_ours(copy, kind, ours);
      return !foreign && k8s::refresh_config(copy, config);
    };
    k8s_update_result r = co_await k8s_update(*client_, target, change);
    if (foreign) {
      ctl_.note(c, *foreign);
      co_return false;
    }
    if (r.answer.status == 404) {
      json::object copy = k8s::primary_config(config, x);
      if (!co_await ensure(c, config_api(kind), copy)) co_return false;
    } else if (r.answer.status != 200) {
      ctl_.note(c, fmt::format("{} {}: {}", r.tries ? "PUT" : "GET", target, k8s_answer_text(r.answer)));
      co_return false;
    }
  }
  co_return true;
}

asio::awaitable<workload_readiness> k8s_cluster::canary_ready(canary_record& c) {
  canary_cluster& k = cluster_[c.spec.id()];
  workload_readiness out;
  out.ready = false;
  std::optional<json::object> object = canary_object(c);
  if (!object) co_return out;
  k8s::canary_extras x = k8s::read_extras(*object);
  // The progress deadline counts from the first wait for this revision (a newer one starts it again).
  if (!k.waiting_since || k.waiting_revision != c.state.revision) {
    k.waiting_since = steady::now();
    k.waiting_revision = c.state.revision;
  }
  const bool past_deadline = steady::now() - *k.waiting_since > std::chrono::seconds(x.progress_deadline_seconds);
  read_result target = co_await get(k8s_api::deployments, x.ns, x.target);
  if (!target.ok()) {
    ctl_.note(c, target.why);
    co_return out;
  }
  if (k8s::spec_replicas(target.object) == 0) {
    // New revision: scaled up to the primary's replicas (Flagger's ScaleFromZero).
    std::string primary_name = x.target + "-primary";
    read_result primary = co_await get(k8s_api::deployments, x.ns, primary_name);
    std::int64_t replicas = primary.ok() ? k8s::spec_replicas(primary.object) : 1;
    std::int64_t up = replicas > 0 ? replicas : 1;
    const bool scaled = co_await scale(c, x.target, up);
    if (!scaled && past_deadline) {  // (the PATCH's answer is noted): not waited on for ever
      k.waiting_since.reset();
      out.failure = fmt::format("progress deadline exceeded {}.{} could not be scaled up", x.target, x.ns);
    }
    co_return out;
  }
  k8s::rollout r = k8s::rollout_status(target.object);
  if (r.done) {
    k.waiting_since.reset();
    out.ready = true;
    co_return out;
  }
  std::string why = fmt::format("{}.{} not ready: {}", x.target, x.ns, r.waiting);
  if (r.deadline_exceeded || past_deadline) {
    k.waiting_since.reset();
    out.failure = "progress deadline exceeded " + why;
    co_return out;
  }
  out.waiting = why;
  co_return out;
}

// Flagger's promotion: the tracked configs and the target's template (strategy, minReadySeconds...) copied
// to the primary with a PUT naming the resourceVersion read, read again and retried on 409 Conflict.
asio::awaitable<bool> k8s_cluster::promote(canary_record& c) {
  canary_cluster& k = cluster_[c.spec.id()];
  std::optional<json::object> object = canary_object(c);
  if (!object) co_return false;
  k8s::canary_extras x = k8s::read_extras(*object);
  read_result target = co_await get(k8s_api::deployments, x.ns, x.target);
  if (!target.ok()) {
    ctl_.event(c, fmt::format("Promotion of {} failed: {}", c.spec.id(), target.why));
    co_return false;
  }
  if (!co_await copy_configs(c, k, x)) {
    ctl_.event(c, fmt::format("Promotion of {} failed: config copies not written", c.spec.id()));
    co_return false;
  }
  std::string path = k8s_api::deployments.path(x.ns, x.target + "-primary");
  const json::object& t = target.object;
  const std::vector<k8s::config_ref>& refs = k.tracked_refs;
  std::function<bool(json::object&)> change = [&t, &refs](json::object& primary) {
    k8s::promote_into(primary, t, refs);
    return true;
  };
  k8s_update_result r = co_await k8s_update(*client_, path, change);
  if (r.tries > 1) log::info("{}: promotion PUT conflicted; written at try {}", c.spec.id(), r.tries);
  if (r.answer.status != 200) {
    ctl_.event(c, fmt::format("Promotion of {} failed: {}", c.spec.id(), k8s_answer_text(r.answer)));
    co_return false;
  }
  if (!x.autoscaler.empty()) co_await promote_hpa(c, x);
  co_return true;
}

// The primary's HPA takes the target HPA's spec (scaling the primary), as it is at promotion.
asio::awaitable<void> k8s_cluster::promote_hpa(canary_record& c, const k8s::canary_extras& x) {
  read_result hpa = co_await get(k8s_api::hpas, x.ns, x.autoscaler);
  if (!hpa.ok()) {
    ctl_.note(c, fmt::format("autoscalerRef {}.{}: {}", x.autoscaler, x.ns, hpa.why));
    co_return;
  }
  json::object copy = k8s::primary_hpa(hpa.object, x);
  std::string path = k8s_api::hpas.path(x.ns, x.autoscaler + "-primary");
  std::function<bool(json::object&)> change = [&copy](json::object& primary) {
    if (primary["spec"] == copy["spec"]) return false;
    primary["spec"] = copy["spec"];
    return true;
  };
  k8s_update_result r = co_await k8s_update(*client_, path, change);
  if (r.answer.status != 200) ctl_.note(c, fmt::format("PUT {}: {}", path, k8s_answer_text(r.answer)));
}

asio::awaitable<bool> k8s_cluster::primary_ready(canary_record& c) {
  std::optional<json::object> object = canary_object(c);
  if (!object) co_return false;
  k8s::canary_extras x = k8s::read_extras(*object);
  const bool ready = co_await primary_rolled_out(c, x, false);
  co_return ready;
}

asio::awaitable<bool> k8s_cluster::primary_rolled_out(canary_record& c, const k8s::canary_extras& x, bool as_event) {
  std::string primary_name = x.target + "-primary";
  read_result primary = co_await get(k8s_api::deployments, x.ns, primary_name);
  if (!primary.ok()) {
    ctl_.note(c, primary.why);
    co_return false;
  }
  k8s::rollout r = k8s::rollout_status(primary.object);
  if (!r.done) {
    std::string why = fmt::format("{}.{} not ready: {}", primary_name, x.ns, r.waiting);
    if (as_event)
      ctl_.event(c, why);
    else
      ctl_.note(c, why);
  }
  co_return r.done;
}

asio::awaitable<void> k8s_cluster::after_tick(canary_record& c) {
  if (!c.state.initialized) co_return;
  canary_cluster& k = cluster_[c.spec.id()];
  const canary_phase phase = c.state.phase;
  if (!analysing_or_waiting(phase)) k.waiting_since.reset();
  if (phase == canary_phase::succeeded || (phase == canary_phase::initialized && k.last_promoted.empty()))
    k.last_promoted = c.state.revision;
  if (phase == canary_phase::initialized || phase == canary_phase::succeeded || phase == canary_phase::failed) {
    // Scaled down once the run is over (and kept so): the primary serves.
    std::optional<json::object> object = canary_object(c);
    if (object) {
      k8s::canary_extras x = k8s::read_extras(*object);
      read_result target = co_await get(k8s_api::deployments, x.ns, x.target);
      const std::int64_t zero = 0;
      if (target.ok() && k8s::spec_replicas(target.object) != 0) co_await scale(c, x.target, zero);
    }
  }
  co_await write_status(c, k);
}

// The status subresource: a GET, the status set, a PUT naming the resourceVersion read (retried on 409).
asio::awaitable<void> k8s_cluster::write_status(canary_record& c, canary_cluster& k) {
  std::optional<json::object> object = canary_object(c);
  if (!object) co_return;
  const json::object* previous = member_object(*object, "status");
  json::object status = k8s::canary_status(c.state, k.last_promoted, k.tracked, previous ? *previous : json::object(),
                                           k8s::now_rfc3339());
  std::string text = json::serialize(status);
  if (text == k.status_written) co_return;
  k8s::canary_extras x = k8s::read_extras(*object);
  // client-go's UpdateStatus in RetryOnConflict: the object read from the main resource (RBAC: get on
  // canaries), its status set, PUT to /status (update on canaries/status) naming the resourceVersion read.
  std::string get = "GET", put = "PUT", path = k8s_api::canaries.path(x.ns, x.name),
              status_path = k8s_api::canaries.path(x.ns, x.name, "status");
  http_result answer;
  for (int attempt = 0; attempt < 5; ++attempt) {
    answer = co_await client_->call(get, path);
    if (answer.status != 200) break;
    auto canary = parse_json_object(answer.body);
    if (!canary) {
      answer.status = 0;
      answer.error = "the Canary read is " + canary.why;
      break;
    }
    const json::value* now = canary.value->if_contains("status");
    // Made again from the run's state as it is now: another writer (the abort loop's rollback) may have
    // changed both since the first read, and a retry after a 409 must not put an older status back.
    status = k8s::canary_status(c.state, k.last_promoted, k.tracked,
                                now && now->is_object() ? now->as_object() : json::object(), k8s::now_rfc3339());
    text = json::serialize(status);
    if (now && now->is_object() && now->as_object() == status) break;  // already so
    (*canary.value)["status"] = status;
    std::string body = json::serialize(*canary.value);
    answer = co_await client_->call(put, status_path, body);
    if (answer.status != 409) break;
  }
  if (answer.status == 200) {
    k.status_written = text;
    co_return;
  }
  log::warn("{}: status not written: {}", c.spec.id(), k8s_answer_text(answer));
  ctl_.note(c, fmt::format("status not written: {}", k8s_answer_text(answer)));
}

void k8s_cluster::event(canary_record& c, const std::string& message) {
  std::optional<json::object> object = canary_object(c);
  if (!object) return;
  k8s::canary_extras x = k8s::read_extras(*object);
  last_event& last = last_events_[c.spec.id()];
  std::string now = k8s::now_rfc3339();
  if (last.message == message && !last.name.empty()) {
    events_.push_back({x.ns, last.name, json::object{{"count", ++last.count}, {"lastTimestamp", now}}});
  } else {
    json::object e = k8s::event(x, message, now, ++event_sequence_);
    last = {std::string(e.at("metadata").at("name").as_string()), message, 1};
    events_.push_back({x.ns, "", std::move(e)});
  }
  if (sending_) return;
  sending_ = true;
  asio::co_spawn(client_->executor(), send_events(), [this](const std::exception_ptr& e) {
    sending_ = false;
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::warn("kubernetes: events not sent: {}", ex.what());
    }
  });
}

// One at a time, in order: the Events of every canary.
asio::awaitable<void> k8s_cluster::send_events() {
  while (!events_.empty()) {
    pending_event e = std::move(events_.front());
    events_.erase(events_.begin());
    std::string method = e.name.empty() ? "POST" : "PATCH", target = k8s_api::events.path(e.ns, e.name),
                body = json::serialize(e.body), type = e.name.empty() ? "" : k8s_merge_patch;
    http_result answer = co_await client_->call(method, target, body, type);
    if (answer.status / 100 != 2) {
      log::warn("kubernetes: event not recorded: {}", k8s_answer_text(answer));
      // The Event is not there (its POST failed, or the one patched is gone): the message's next
      // repeat makes a new one, instead of patching nothing again and again.
      std::string name = e.name;
      if (const json::object* m = member_object(e.body, "metadata"); m && name.empty())
        name = std::string(member_string(*m, "name").value_or(""));
      for (auto& [id, last] : last_events_)
        if (!name.empty() && last.name == name) last = last_event{};
    }
  }
}

}  // namespace

int run_kubernetes(controller_options options, const kubernetes_options& k8s) {
  if (!options.kubernetes) {
    std::fprintf(stderr, "vane-control: --kubernetes: no credentials for the API server\n");
    return 1;
  }
  const k8s_config config = *options.kubernetes;
  options.wait_for_leadership = k8s.election.has_value();
  controller ctl(options);
  ctl.start();
  std::string error;
  auto client = k8s_client::make(ctl.executor(), config, error);
  if (!client) {
    std::fprintf(stderr, "vane-control: %s\n", error.c_str());
    return 1;
  }
  k8s_cluster cluster(ctl, client, k8s.namespace_name);
  ctl.set_cluster(&cluster);
  // The Canaries are read (and acted on) only while this process leads, when it elects.
  ctl.on_lead = [&cluster] { cluster.start(); };
  if (!k8s.election) cluster.start();
  std::unique_ptr<leader_election_thread> elector;
  if (k8s.election) {
    elector = std::make_unique<leader_election_thread>(config, *k8s.election);
    auto started = [&ctl] { ctl.lead(); };
    auto stopped = [&ctl] {
      log::error("leader election lost: stopping (exit 1), as client-go's controllers do");
      ctl.stop(1);
    };
    if (!elector->start(started, stopped, error)) {
      log::error("--leader-elect: {}", error);
      return 1;
    }
  }
  std::optional<inject_webhook> webhook;
  if (k8s.webhook) {
    webhook.emplace(ctl.executor(), *k8s.webhook);
    webhook->start();
  }
  log::info("vane-control: Kubernetes mode on {}, {}", config.server,
            k8s.namespace_name.empty() ? "every namespace" : "namespace " + k8s.namespace_name);
  int code = ctl.run();
  if (elector) elector->shutdown();  // the loops are stopped: release the Lease (a standby takes over now)
  return code;
}

}  // namespace vane::control
