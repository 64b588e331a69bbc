#include "control/k8s_objects.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <ctime>
#include <functional>
#include <set>

#include "control/parse.hpp"
#include "control/phase.hpp"
#include "control/webhooks.hpp"

namespace vane::control::k8s {

namespace json = boost::json;

namespace {

// Writable children, made objects when absent or of another type.
json::object& child(json::object& o, std::string_view key) {
  json::value& v = o[key];
  if (!v.is_object()) v = json::object();
  return v.as_object();
}

std::string text(const json::object& o, std::string_view key) {
  return std::string(member_string(o, key).value_or(""));
}

const json::object* path(const json::object& o, std::initializer_list<std::string_view> keys) {
  const json::object* at = &o;
  for (auto k : keys) {
    at = member_object(*at, k);
    if (!at) return nullptr;
  }
  return at;
}

std::int64_t integer(const json::object& o, std::string_view key, std::int64_t otherwise) {
  auto it = o.find(key);
  if (it == o.end()) return otherwise;
  return as_integer(it->value()).value_or(otherwise);
}

std::string hex_sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned int i = 0; i < size; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

// The data a config's hash covers.
std::string config_data(const json::object& config) {
  json::object d;
  for (const char* key : {"data", "binaryData", "stringData"})
    if (auto it = config.find(key); it != config.end()) d[key] = it->value();
  return json::serialize(d);
}

std::string config_name(const json::object& config) {
  const json::object* m = member_object(config, "metadata");
  return m ? text(*m, "name") : "";
}

// Every place a pod template names a ConfigMap or Secret: calls `visit(kind, the name's value)`.
void each_ref(json::object& pod_template, const std::function<void(const char*, json::value&)>& visit) {
  json::object* spec = nullptr;
  if (auto it = pod_template.find("spec"); it != pod_template.end() && it->value().is_object())
    spec = &it->value().as_object();
  if (!spec) return;
  auto named = [&](json::value& holder, const char* kind, const char* key) {
    if (!holder.is_object()) return;
    auto it = holder.as_object().find(key);
    if (it != holder.as_object().end() && it->value().is_string()) visit(kind, it->value());
  };
  if (auto v = spec->find("volumes"); v != spec->end() && v->value().is_array()) {
    for (auto& volume : v->value().as_array()) {
      if (!volume.is_object()) continue;
      auto& vo = volume.as_object();
      if (auto c = vo.find("configMap"); c != vo.end()) named(c->value(), "ConfigMap", "name");
      if (auto s = vo.find("secret"); s != vo.end()) named(s->value(), "Secret", "secretName");
      if (auto p = vo.find("projected"); p != vo.end() && p->value().is_object()) {
        auto& po = p->value().as_object();
        if (auto src = po.find("sources"); src != po.end() && src->value().is_array())
          for (auto& source : src->value().as_array()) {
            if (!source.is_object()) continue;
            if (auto c = source.as_object().find("configMap"); c != source.as_object().end())
              named(c->value(), "ConfigMap", "name");
            if (auto s = source.as_object().find("secret"); s != source.as_object().end())
              named(s->value(), "Secret", "name");
          }
      }
    }
  }
  for (const char* list : {"containers", "initContainers"}) {
    auto cs = spec->find(list);
    if (cs == spec->end() || !cs->value().is_array()) continue;
    for (auto& container : cs->value().as_array()) {
      if (!container.is_object()) continue;
      auto& co = container.as_object();
      if (auto env = co.find("env"); env != co.end() && env->value().is_array())
        for (auto& e : env->value().as_array()) {
          if (!e.is_object()) continue;
          auto from = e.as_object().find("valueFrom");
          if (from == e.as_object().end() || !from->value().is_object()) continue;
          auto& fo = from->value().as_object();
          if (auto c = fo.find("configMapKeyRef"); c != fo.end()) named(c->value(), "ConfigMap", "name");
          if (auto s = fo.find("secretKeyRef"); s != fo.end()) named(s->value(), "Secret", "name");
        }
      if (auto env = co.find("envFrom"); env != co.end() && env->value().is_array())
        for (auto& e : env->value().as_array()) {
          if (!e.is_object()) continue;
          if (auto c = e.as_object().find("configMapRef"); c != e.as_object().end())
            named(c->value(), "ConfigMap", "name");
          if (auto s = e.as_object().find("secretRef"); s != e.as_object().end()) named(s->value(), "Secret", "name");
        }
    }
  }
}

void relabel(json::object& labels, const std::string& label, const std::string& value) {
  labels[label] = value + "-primary";
}

}  // namespace

canary_extras read_extras(const json::object& canary) {
  canary_extras c;
  if (const json::object* m = member_object(canary, "metadata")) {
    c.ns = text(*m, "namespace");
    c.name = text(*m, "name");
    c.uid = text(*m, "uid");
  }
  if (c.ns.empty()) c.ns = "default";
  const json::object* spec = member_object(canary, "spec");
  if (!spec) return c;
  if (const json::object* t = member_object(*spec, "targetRef")) c.target = text(*t, "name");
  if (c.target.empty()) c.target = c.name;
  if (const json::object* a = member_object(*spec, "autoscalerRef")) c.autoscaler = text(*a, "name");
  c.service = c.target;
  if (const json::object* s = member_object(*spec, "service")) {
    if (auto n = member_string(*s, "name"); n && !n->empty()) c.service = std::string(*n);
    c.port = integer(*s, "port", 0);
    if (auto tp = s->find("targetPort"); tp != s->end() && (tp->value().is_string() || tp->value().is_number()))
      c.target_port = tp->value();
    if (auto pn = member_string(*s, "portName"); pn && !pn->empty()) c.port_name = std::string(*pn);
  }
  if (c.target_port.is_null() && c.port > 0) c.target_port = c.port;
  // (an int32 in Flagger's CRD: a larger one, which would overflow the deadline's arithmetic, is its maximum)
  c.progress_deadline_seconds =
      std::clamp<std::int64_t>(integer(*spec, "progressDeadlineSeconds", 600), 1, std::int64_t{2147483647});
  return c;
}

std::vector<config_ref> config_refs(const json::object& pod_template) {
  std::set<config_ref> found;
  json::object copy = pod_template;  // each_ref visits writable values; this one is thrown away
  each_ref(copy, [&](const char* kind, json::value& name) { found.insert({kind, std::string(name.as_string())}); });
  return {found.begin(), found.end()};
}

bool tracked(const json::object& config) {
  const json::object* a = path(config, {"metadata", "annotations"});
  return !a || member_string(*a, "flagger.app/config-tracking").value_or("") != "disabled";
}

std::optional<std::pair<std::string, std::string>> selector_label(const json::object& deployment) {
  const json::object* labels = path(deployment, {"spec", "selector", "matchLabels"});
  if (!labels) return std::nullopt;
  for (const char* key : {"app", "name", "app.kubernetes.io/name"})
    if (auto v = member_string(*labels, key); v && !v->empty()) return std::pair{std::string(key), std::string(*v)};
  return std::nullopt;
}

std::string revision_hash(const json::object& pod_template, const std::vector<json::object>& configs) {
  std::string all = json::serialize(pod_template);
  for (const auto& c : configs) all += "\n" + text(c, "kind") + "/" + config_name(c) + "\n" + config_data(c);
  return hex_sha256(all).substr(0, 16);
}

json::object tracked_configs(const std::vector<json::object>& configs) {
  json::object out;
  for (const auto& c : configs) {
    std::string kind = text(c, "kind");
    std::transform(kind.begin(), kind.end(), kind.begin(), [](unsigned char ch) { return std::tolower(ch); });
    out[kind + "/" + config_name(c)] = hex_sha256(config_data(c)).substr(0, 8);
  }
  return out;
}

json::object owner_reference(const canary_extras& c) {
  return json::object{
      {"apiVersion", "flagger.app/v1beta1"}, {"kind", "Canary"}, {"name", c.name}, {"uid", c.uid}, {"controller", true},
      {"blockOwnerDeletion", true}};
}

json::object primary_template(const json::object& target_template, const std::string& label, const std::string& value,
                              const std::vector<config_ref>& tracked_refs) {
  json::object t = target_template;
  relabel(child(child(t, "metadata"), "labels"), label, value);
  each_ref(t, [&](const char* kind, json::value& name) {
    config_ref ref{kind, std::string(name.as_string())};
    if (std::find(tracked_refs.begin(), tracked_refs.end(), ref) != tracked_refs.end()) name = ref.name + "-primary";
  });
  return t;
}

void promote_into(json::object& primary, const json::object& target, const std::vector<config_ref>& tracked_refs) {
  auto label = selector_label(target);
  const json::object* target_spec = member_object(target, "spec");
  if (!label || !target_spec) return;
  json::object& spec = child(primary, "spec");
  for (const char* key : {"minReadySeconds", "revisionHistoryLimit", "strategy", "progressDeadlineSeconds"}) {
    if (auto it = target_spec->find(key); it != target_spec->end())
      spec[key] = it->value();
    else
      spec.erase(key);
  }
  const json::object* tmpl = member_object(*target_spec, "template");
  spec["template"] = primary_template(tmpl ? *tmpl : json::object(), label->first, label->second, tracked_refs);
}

json::object primary_deployment(const json::object& target, const canary_extras& c,
                                const std::vector<config_ref>& tracked_refs) {
  json::object d{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}};
  json::object& m = child(d, "metadata");
  m["name"] = c.target + "-primary";
  m["namespace"] = c.ns;
  auto label = selector_label(target);
  if (const json::object* tm = member_object(target, "metadata")) {
    if (const json::object* labels = member_object(*tm, "labels")) {
      json::object l = *labels;
      if (label && l.contains(label->first)) relabel(l, label->first, label->second);
      m["labels"] = std::move(l);
    }
  }
  m["ownerReferences"] = json::array{owner_reference(c)};
  json::object& spec = child(d, "spec");
  std::int64_t replicas = spec_replicas(target);
  spec["replicas"] = replicas > 0 ? replicas : 1;
  json::object selector = path(target, {"spec", "selector"}) ? *path(target, {"spec", "selector"}) : json::object();
  if (label) relabel(child(selector, "matchLabels"), label->first, label->second);
  spec["selector"] = std::move(selector);
  promote_into(d, target, tracked_refs);
  return d;
}

json::object primary_config(const json::object& config, const canary_extras& c) {
  json::object copy{{"apiVersion", "v1"}, {"kind", text(config, "kind")}};
  json::object& m = child(copy, "metadata");
  m["name"] = config_name(config) + "-primary";
  m["namespace"] = c.ns;
  if (const json::object* labels = path(config, {"metadata", "labels"})) m["labels"] = *labels;
  m["ownerReferences"] = json::array{owner_reference(c)};
  refresh_config(copy, config);
  return copy;
}

bool refresh_config(json::object& copy, const json::object& config) {
  json::object before = copy;
  for (const char* key : {"data", "binaryData", "stringData", "type"}) {
    if (auto it = config.find(key); it != config.end())
      copy[key] = it->value();
    else if (std::string_view(key) != "type")
      copy.erase(key);
  }
  return copy != before;
}

json::object service(const std::string& name, const std::string& label, const std::string& value,
                     const canary_extras& c) {
  json::object port{{"name", c.port_name}, {"port", c.port}, {"protocol", "TCP"}, {"targetPort", c.target_port}};
  return json::object{{"apiVersion", "v1"},
                      {"kind", "Service"},
                      {"metadata", json::object{{"name", name},
                                                {"namespace", c.ns},
                                                {"labels", json::object{{label, name}}},
                                                {"ownerReferences", json::array{owner_reference(c)}}}},
                      {"spec", json::object{{"type", "ClusterIP"},
                                            {"selector", json::object{{label, value}}},
                                            {"ports", json::array{std::move(port)}}}}};
}

json::object primary_hpa(const json::object& hpa, const canary_extras& c) {
  json::object copy{{"apiVersion", text(hpa, "apiVersion").empty() ? "autoscaling/v2" : text(hpa, "apiVersion")},
                    {"kind", "HorizontalPodAutoscaler"}};
  json::object& m = child(copy, "metadata");
  m["name"] = c.autoscaler + "-primary";
  m["namespace"] = c.ns;
  m["ownerReferences"] = json::array{owner_reference(c)};
  json::object spec = member_object(hpa, "spec") ? *member_object(hpa, "spec") : json::object();
  child(spec, "scaleTargetRef")["name"] = c.target + "-primary";
  copy["spec"] = std::move(spec);
  return copy;
}

std::int64_t spec_replicas(const json::object& deployment) {
  const json::object* spec = member_object(deployment, "spec");
  return spec ? integer(*spec, "replicas", -1) : -1;
}

rollout rollout_status(const json::object& deployment) {
  rollout r;
  std::int64_t wanted = spec_replicas(deployment);
  r.replicas = wanted < 0 ? 1 : wanted;
  const json::object* m = member_object(deployment, "metadata");
  const json::object* status = member_object(deployment, "status");
  std::int64_t generation = m ? integer(*m, "generation", 0) : 0;
  if (!status || integer(*status, "observedGeneration", 0) < generation) {
    r.waiting = "waiting for the deployment spec update to be observed";
    return r;
  }
  if (const json::array* conditions = member_array(*status, "conditions"))
    for (const auto& cv : *conditions)
      if (cv.is_object() && text(cv.as_object(), "type") == "Progressing" &&
          text(cv.as_object(), "reason") == "ProgressDeadlineExceeded")
        r.deadline_exceeded = true;
  std::int64_t updated = integer(*status, "updatedReplicas", 0), replicas = integer(*status, "replicas", 0),
               available = integer(*status, "availableReplicas", 0);
  if (updated < r.replicas)
    r.waiting =
        fmt::format("waiting for rollout to finish: {} out of {} new replicas have been updated", updated, r.replicas);
  else if (replicas > updated)
    r.waiting =
        fmt::format("waiting for rollout to finish: {} old replicas are pending termination", replicas - updated);
  else if (available < updated)
    r.waiting =
        fmt::format("waiting for rollout to finish: {} of {} updated replicas are available", available, updated);
  else
    r.done = true;
  return r;
}

json::object canary_status(const run_state& st, const std::string& last_promoted, const json::object& tracked_cfg,
                           const json::object& previous, const std::string& now) {
  std::string phase(phase_name(st.phase)), status = "Unknown", message;
  switch (st.phase) {
    case canary_phase::initialized:
      status = "True";
      message = "Deployment initialization completed.";
      break;
    case canary_phase::waiting:
    case canary_phase::waiting_promotion:
      message = "Waiting for approval.";
      break;
    case canary_phase::progressing:
      message = "New revision detected, progressing canary analysis.";
      break;
    case canary_phase::promoting:
      message = "Canary analysis completed, starting primary rolling update.";
      break;
    case canary_phase::finalising:
      message = "Canary analysis completed, routing all traffic to primary.";
      break;
    case canary_phase::succeeded:
      status = "True";
      message = "Canary analysis completed successfully, promotion finished.";
      break;
    case canary_phase::failed:
      status = "False";
      message = "Canary analysis failed, Deployment scaled to zero.";
      break;
  }
  std::string transition = now;
  if (const json::array* old = member_array(previous, "conditions"))
    for (const auto& cv : *old)
      if (cv.is_object() && text(cv.as_object(), "type") == "Promoted" && text(cv.as_object(), "status") == status &&
          text(cv.as_object(), "reason") == phase && !text(cv.as_object(), "lastTransitionTime").empty())
        transition = text(cv.as_object(), "lastTransitionTime");
  json::object condition{{"type", "Promoted"},
                         {"status", status},
                         {"reason", phase},
                         {"message", message},
                         {"lastUpdateTime", transition},
                         {"lastTransitionTime", transition}};
  return json::object{{"phase", phase},
                      {"canaryWeight", st.weight},
                      {"failedChecks", st.failed_checks},
                      {"iterations", st.iterations},
                      {"lastAppliedSpec", st.revision},
                      {"lastPromotedSpec", last_promoted},
                      {"trackedConfigs", tracked_cfg},
                      {"lastTransitionTime", st.last_transition.empty() ? now : st.last_transition},
                      {"conditions", json::array{std::move(condition)}}};
}

run_state state_from_status(const json::object& status, std::string& last_promoted) {
  run_state st;
  last_promoted = text(status, "lastPromotedSpec");
  auto phase = phase_from_name(text(status, "phase"));
  st.revision = text(status, "lastAppliedSpec");
  // Flagger's Initializing (or no status yet): not initialized; its Terminating/Terminated are not vane's.
  if (!phase || st.revision.empty()) return st;
  st.phase = *phase;
  st.initialized = true;
  auto count = [&](std::string_view key) {
    auto it = status.find(key);
    return it == status.end() ? 0U : static_cast<std::uint32_t>(as_count(it->value()).value_or(0));
  };
  st.weight = std::min(count("canaryWeight"), 100U);
  st.failed_checks = count("failedChecks");
  st.iterations = count("iterations");
  st.last_transition = text(status, "lastTransitionTime");
  // Not in the status, implied by it: past the first step, the pre-rollout hooks ran; in Promoting the
  // primary was promoted (its wait restarts, control/run.cpp).
  st.pre_rollout_done = st.weight > 0 || st.iterations > 0 || st.phase == canary_phase::waiting_promotion ||
                        st.phase == canary_phase::promoting || st.phase == canary_phase::finalising;
  st.primary_promoted = st.phase == canary_phase::promoting || st.phase == canary_phase::finalising;
  return st;
}

json::object event(const canary_extras& c, const std::string& message, const std::string& now, std::uint64_t sequence) {
  const bool warning = warning_event(message);
  auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", json::object{{"name", fmt::format("{}.{:x}{:x}", c.name, nanos, sequence)}, {"namespace", c.ns}}},
      {"involvedObject", json::object{{"apiVersion", "flagger.app/v1beta1"},
                                      {"kind", "Canary"},
                                      {"name", c.name},
                                      {"namespace", c.ns},
                                      {"uid", c.uid}}},
      {"reason", "Synced"},
      {"message", message},
      {"type", warning ? "Warning" : "Normal"},
      {"source", json::object{{"component", "vane-control"}}},
      {"reportingComponent", "vane-control"},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
      {"count", 1}};
}

namespace {

json::object trimmed(const json::object& object) {
  json::object out{{"apiVersion", text(object, "apiVersion")}, {"kind", text(object, "kind")}};
  json::object m;
  if (const json::object* om = member_object(object, "metadata")) {
    m["name"] = text(*om, "name");
    if (auto ns = member_string(*om, "namespace")) m["namespace"] = *ns;
  }
  out["metadata"] = std::move(m);
  if (auto it = object.find("spec"); it != object.end()) out["spec"] = it->value();
  return out;
}

}  // namespace

std::string document_text(const json::object& object) { return json::serialize(trimmed(object)); }

std::string now_rfc3339() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

}  // namespace vane::control::k8s
