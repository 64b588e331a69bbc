#include "control/spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "common/address.hpp"
#include "common/grpc.hpp"
#include "common/match_vocabulary.hpp"
#include "common/regex.hpp"
#include "control/k8s_endpoints.hpp"

namespace vane::control {

namespace json = boost::json;

namespace {

constexpr std::string_view api_version = "flagger.app/v1beta1";

// One document, read with its own reader: its errors refuse it alone.
class doc_parser {
 public:
  doc_parser(yaml_reader& r, documents& out, int line) : r_(r), out_(out), line_(line) {}

  void metadata(const YAML::Node& m, std::string& name, std::string& ns, std::string_view kind) {
    if (!r_.expect_map(m, "metadata")) return;
    ignored(
        r_.check_keys_ignoring(m, "metadata", {"name", "namespace"},
                               {"labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp"}),
        kind, "metadata");
    if (r_.require(m, "name", "metadata"))
      if (auto v = r_.get_string(m["name"], "metadata.name")) name = *v;
    if (auto v = m["namespace"])
      if (auto s = r_.get_string(v, "metadata.namespace")) ns = *s;
    name_ = name;
  }

  void canary(const YAML::Node& spec, canary_spec& c) {
    if (!r_.expect_map(spec, "spec")) return;
    ignored(r_.check_keys_ignoring(spec, "spec",
                                   {"revision", "route", "primary", "canary", "proxies", "promote", "analysis",
                                    "canaryAnalysis", "skipAnalysis", "targetRef"},
                                   {"service", "autoscalerRef", "provider", "progressDeadlineSeconds",
                                    "primaryReadyThreshold", "canaryReadyThreshold", "revertOnDeletion", "suspend",
                                    "ingressRef", "upstreamRef", "routeRef", "glooRef", "metricsServer"}),
            "Canary", "spec");
    if (auto t = spec["targetRef"]) {
      if (r_.expect_map(t, "spec.targetRef")) {
        ignored(r_.check_keys_ignoring(t, "targetRef", {"name"}, {"kind", "apiVersion"}), "Canary", "targetRef");
        if (auto n = t["name"])
          if (auto s = r_.get_string(n, "targetRef.name")) c.target = *s;
      }
    }
    if (c.target.empty()) c.target = c.name;
    if (auto v = spec["revision"]) {
      if (!v.IsScalar())
        r_.error(v, "spec.revision must be a string");
      else
        c.revision = v.Scalar();
    }
    if (r_.require(spec, "route", "spec"))
      if (auto s = r_.get_string(spec["route"], "spec.route")) c.route = *s;
    c.primary = c.target + "-primary";
    c.canary = c.target + "-canary";
    if (auto v = spec["primary"])
      if (auto s = r_.get_string(v, "spec.primary")) c.primary = *s;
    if (auto v = spec["canary"])
      if (auto s = r_.get_string(v, "spec.canary")) c.canary = *s;
    if (r_.require(spec, "proxies", "spec") && r_.expect_sequence(spec["proxies"], "spec.proxies")) {
      for (const auto& p : spec["proxies"]) {
        auto s = r_.get_string(p, "spec.proxies");
        if (!s) continue;
        if (s->starts_with("k8s:") && !parse_k8s_proxy(*s))
          r_.error(p, fmt::format("spec.proxies: '{}' is not k8s:NAMESPACE/SERVICE:PORT", *s));
        else if ((!s->starts_with("dns:") && !s->starts_with("k8s:")) &&
                 (!s->starts_with("http://") || !parse_http_url(*s)))
          r_.error(p, fmt::format("spec.proxies: '{}' is neither http://HOST:PORT, dns:NAME:PORT nor "
                                  "k8s:NAMESPACE/SERVICE:PORT",
                                  *s));
        else
          c.proxies.push_back(*s);
      }
      if (spec["proxies"].IsSequence() && spec["proxies"].size() == 0)
        r_.error(spec["proxies"], "spec.proxies is empty");
    }
    if (auto p = spec["promote"]) promote(p, c);
    if (auto v = spec["skipAnalysis"])
      if (auto b = r_.get_bool(v, "spec.skipAnalysis")) c.skip_analysis = *b;
    YAML::Node a = spec["analysis"] ? spec["analysis"] : spec["canaryAnalysis"];
    if (a)
      analysis(a, c.analysis);
    else if (!c.skip_analysis)
      r_.error(spec, "spec: missing required key 'analysis' (or skipAnalysis: true)");
  }

  void metric_template_spec(const YAML::Node& spec, metric_template& t) {
    if (!r_.expect_map(spec, "spec")) return;
    r_.check_keys(spec, "spec", {"provider", "query"});
    if (r_.require(spec, "provider", "spec")) provider(spec["provider"], t.provider_type, t.provider_address);
    if (r_.require(spec, "query", "spec"))
      if (auto q = r_.get_string(spec["query"], "spec.query")) t.query = *q;
  }

  void alert_provider_spec(const YAML::Node& spec, alert_provider& p) {
    if (!r_.expect_map(spec, "spec")) return;
    ignored(r_.check_keys_ignoring(spec, "spec", {"type", "address", "channel", "username"}, {"secretRef", "proxy"}),
            "AlertProvider", "spec");
    if (r_.require(spec, "type", "spec")) {
      if (auto s = r_.get_string(spec["type"], "spec.type")) {
        static constexpr std::string_view types[] = {"slack", "msteams", "discord", "rocket", "gchat", "generic"};
        if (std::find(std::begin(types), std::end(types), *s) == std::end(types))
          r_.error(spec["type"],
                   fmt::format("AlertProvider type '{}': slack, msteams, discord, rocket, gchat or generic", *s));
        p.type = *s;
      }
    }
    for (auto [key, target] :
         {std::pair{"address", &p.address}, std::pair{"channel", &p.channel}, std::pair{"username", &p.username}}) {
      if (auto v = spec[key])
        if (auto s = r_.get_string(v, fmt::format("spec.{}", key))) *target = *s;
    }
    if (!p.address.starts_with("http://"))
      r_.error(spec, "AlertProvider: spec.address must be an http:// URL (vane posts the alert there)");
  }

 private:
  void ignored(const std::vector<std::string>& keys, std::string_view kind, std::string_view where) {
    for (const auto& k : keys)
      out_.ignored.push_back(fmt::format("{}:{}: {} {}: Flagger field '{}.{}' has no use in vane and is ignored",
                                         r_.file(), line_, kind, name_, where, k));
  }

  void provider(const YAML::Node& p, std::string& type, std::string& address) {
    if (!r_.expect_map(p, "provider")) return;
    ignored(r_.check_keys_ignoring(p, "provider", {"type", "address"}, {"secretRef", "insecureSkipVerify", "region"}),
            "MetricTemplate", "provider");
    if (r_.require(p, "type", "provider"))
      if (auto s = r_.get_string(p["type"], "provider.type")) type = *s;
    if (type != "prometheus" && !type.empty())
      r_.error(p["type"], fmt::format("provider.type '{}': vane reads prometheus only", type));
    if (r_.require(p, "address", "provider"))
      if (auto s = r_.get_string(p["address"], "provider.address")) address = *s;
    if (!address.empty() && !address.starts_with("http://"))
      r_.error(p["address"], "provider.address must be an http:// URL");
  }

  void promote(const YAML::Node& p, canary_spec& c) {
    if (!r_.expect_map(p, "spec.promote")) return;
    r_.check_keys(p, "promote", {"url", "command", "timeout"});
    promote_spec ps;
    if (auto v = p["url"]) {
      if (auto s = r_.get_string(v, "promote.url")) {
        if (!parse_http_url(*s))
          r_.error(v, fmt::format("promote.url: '{}' is not an http:// URL", *s));  // (no https: as webhooks)
        ps.url = *s;
      }
    }
    if (auto v = p["command"]; v && r_.expect_sequence(v, "promote.command"))
      for (const auto& e : v)
        if (auto s = r_.get_string(e, "promote.command")) ps.command.push_back(*s);
    if (auto v = p["timeout"])
      if (auto d = r_.get_duration(v, "promote.timeout")) ps.timeout = *d;
    if (ps.url.empty() == ps.command.empty()) r_.error(p, "promote: give exactly one of url, command");
    c.promote = ps;
  }

  std::optional<std::uint32_t> percent(const YAML::Node& n, std::string_view what) {
    auto v = r_.get_int(n, what, 0, 100);
    if (!v) return std::nullopt;
    return static_cast<std::uint32_t>(*v);
  }

  // The time between two ticks: at least 100ms (0s would loop the tick hot).
  std::optional<duration> tick_interval(const YAML::Node& v, const std::string& what) {
    auto d = r_.get_duration(v, what);
    if (d && *d < std::chrono::milliseconds(100)) {
      r_.error(v, what + " must be at least 100ms (each tick reads every proxy)");
      return std::nullopt;
    }
    return d;
  }

  void analysis(const YAML::Node& a, analysis_spec& an) {
    if (!r_.expect_map(a, "analysis")) return;
    r_.check_keys(a, "analysis",
                  {"interval", "threshold", "maxWeight", "stepWeight", "stepWeights", "stepWeightPromotion",
                   "iterations", "match", "mirror", "mirrorWeight", "sessionAffinity", "abort", "guard", "fallback",
                   "grpcFailureCodes", "metrics", "webhooks", "alerts"});
    if (auto v = a["interval"])
      if (auto d = tick_interval(v, "analysis.interval")) an.interval = *d;
    if (auto v = a["threshold"])
      if (auto t = r_.get_int(v, "analysis.threshold", 1, 1000)) an.threshold = static_cast<std::uint32_t>(*t);
    if (auto v = a["maxWeight"])
      if (auto w = percent(v, "analysis.maxWeight")) an.max_weight = *w;
    if (auto v = a["stepWeight"])
      if (auto w = percent(v, "analysis.stepWeight")) an.step_weight = *w;
    if (auto v = a["stepWeightPromotion"])
      if (auto w = percent(v, "analysis.stepWeightPromotion")) an.step_weight_promotion = *w;
    if (auto v = a["stepWeights"]; v && r_.expect_sequence(v, "analysis.stepWeights")) {
      std::uint32_t last = 0;
      for (const auto& e : v) {
        step_spec s;
        if (e.IsMap()) {
          r_.check_keys(e, "stepWeights entry", {"weight", "interval"});
          if (r_.require(e, "weight", "stepWeights entry"))
            if (auto w = percent(e["weight"], "stepWeights.weight")) s.weight = *w;
          if (auto i = e["interval"])
            if (auto d = tick_interval(i, "stepWeights.interval")) s.interval = *d;
        } else if (auto w = percent(e, "analysis.stepWeights")) {
          s.weight = *w;
        }
        if (s.weight <= last) r_.error(e, "analysis.stepWeights must increase");
        last = s.weight;
        an.step_weights.push_back(s);
      }
    }
    if (auto v = a["iterations"])
      if (auto i = r_.get_int(v, "analysis.iterations", 0, 100000)) an.iterations = static_cast<std::uint32_t>(*i);
    if (auto v = a["match"]) match(v, an);
    if (auto v = a["mirror"])
      if (auto b = r_.get_bool(v, "analysis.mirror")) an.mirror = *b;
    if (auto v = a["mirrorWeight"])
      if (auto w = percent(v, "analysis.mirrorWeight")) an.mirror_weight = *w;
    if (auto v = a["sessionAffinity"]; v && r_.expect_map(v, "analysis.sessionAffinity")) {
      r_.check_keys(v, "sessionAffinity", {"cookieName", "primaryCookieName", "maxAge"});
      an.affinity_cookie = "flagger-cookie";
      if (auto c = v["cookieName"])
        if (auto s = r_.get_string(c, "sessionAffinity.cookieName")) an.affinity_cookie = *s;
      if (auto c = v["primaryCookieName"])
        if (auto s = r_.get_string(c, "sessionAffinity.primaryCookieName")) an.affinity_primary_cookie = *s;
      if (auto m = v["maxAge"])
        if (auto secs = r_.get_int(m, "sessionAffinity.maxAge", 1, 10LL * 365 * 86400))
          an.affinity_max_age = std::chrono::seconds(*secs);
    }
    if (auto v = a["abort"]; v && r_.expect_map(v, "analysis.abort")) {
      r_.check_keys(v, "abort", {"maxErrorRate", "minRequests"});
      if (auto m = v["maxErrorRate"]) {
        try {
          double rate = m.as<double>();
          if (rate <= 0 || rate > 100)
            r_.error(m, "abort.maxErrorRate must be in (0, 100]");
          else
            an.abort_max_error_rate = rate;
        } catch (const YAML::Exception&) {
          r_.error(m, "abort.maxErrorRate must be a number");
        }
      } else {
        r_.error(v, "abort: missing required key 'maxErrorRate'");
      }
      if (auto m = v["minRequests"])
        if (auto n = r_.get_int(m, "abort.minRequests", 0, 1'000'000'000))
          an.abort_min_requests = static_cast<std::uint64_t>(*n);
    }
    if (auto v = a["guard"]; v && r_.expect_map(v, "analysis.guard")) {
      r_.check_keys(v, "guard", {"maxErrorPercent", "minRequests", "window"});
      guard_spec g;
      if (auto m = v["maxErrorPercent"]) {
        if (auto rate = number(m, "guard.maxErrorPercent"); rate && (*rate <= 0 || *rate > 100))
          r_.error(m, "guard.maxErrorPercent must be in (0, 100]");
        else if (rate)
          g.max_error_percent = *rate;
      }
      if (auto m = v["minRequests"])
        if (auto n = r_.get_int(m, "guard.minRequests", 1, 1'000'000)) g.min_requests = static_cast<std::uint64_t>(*n);
      if (auto w = v["window"]) {
        auto d = r_.get_duration(w, "guard.window");
        if (d && (*d < std::chrono::milliseconds(100) || *d > std::chrono::minutes(10)))
          r_.error(w, "guard.window must be from 100ms to 10m");
        else if (d)
          g.window = *d;
      }
      an.guard = g;
    }
    if (auto v = a["fallback"])
      if (auto b = r_.get_bool(v, "analysis.fallback")) an.fallback = *b;
    if (auto v = a["grpcFailureCodes"]; v && r_.expect_sequence(v, "analysis.grpcFailureCodes")) {
      an.grpc_failures = 0;
      for (const auto& c : v) {
        auto text = r_.get_string(c, "analysis.grpcFailureCodes");
        if (!text) continue;
        if (auto code = parse_grpc_code(*text))
          an.grpc_failures |= 1U << *code;
        else
          r_.error(c, fmt::format("analysis.grpcFailureCodes: \"{}\" is not a gRPC status (a name such as "
                                  "UNAVAILABLE, or 0 to 16)",
                                  *text));
      }
    }
    if (auto v = a["metrics"]; v && r_.expect_sequence(v, "analysis.metrics"))
      for (const auto& m : v) metric(m, an);
    if (auto v = a["webhooks"]; v && r_.expect_sequence(v, "analysis.webhooks"))
      for (const auto& w : v) webhook(w, an);
    if (auto v = a["alerts"]; v && r_.expect_sequence(v, "analysis.alerts"))
      for (const auto& al : v) alert(al, an);
    if (an.step_weight == 0 && an.step_weights.empty() && an.iterations == 0)
      r_.error(a, "analysis: give stepWeight, stepWeights or iterations");
  }

  std::optional<double> number(const YAML::Node& n, std::string_view what) {
    try {
      return n.as<double>();
    } catch (const YAML::Exception&) {
      r_.error(n, fmt::format("{} must be a number", what));
      return std::nullopt;
    }
  }

  void metric(const YAML::Node& m, analysis_spec& an) {
    if (!r_.expect_map(m, "a metric")) return;
    ignored(r_.check_keys_ignoring(m, "metric",
                                   {"name", "thresholdRange", "interval", "minRequests", "relativeTo", "templateRef",
                                    "provider", "query", "templateVariables"},
                                   {"threshold"}),
            "Canary", "metric");
    metric_spec ms;
    if (r_.require(m, "name", "metric"))
      if (auto s = r_.get_string(m["name"], "metric.name")) ms.name = *s;
    if (auto t = m["thresholdRange"]; t && r_.expect_map(t, "metric.thresholdRange")) {
      r_.check_keys(t, "thresholdRange", {"min", "max"});
      if (auto v = t["min"]) ms.min = number(v, "thresholdRange.min");
      if (auto v = t["max"]) ms.max = number(v, "thresholdRange.max");
    }
    if (auto v = m["interval"])
      if (auto d = r_.get_duration(v, "metric.interval")) ms.interval = *d;
    if (auto v = m["minRequests"])
      if (auto n = r_.get_int(v, "metric.minRequests", 0, 1'000'000'000))
        ms.min_requests = static_cast<std::uint64_t>(*n);
    if (auto v = m["relativeTo"]) {
      auto s = r_.get_string(v, "metric.relativeTo");
      if (s && *s != "primary") r_.error(v, "metric.relativeTo: only 'primary'");
      ms.relative_to_primary = s && *s == "primary";
    }
    if (auto t = m["templateRef"]; t && r_.expect_map(t, "metric.templateRef")) {
      r_.check_keys(t, "templateRef", {"name", "namespace"});
      if (r_.require(t, "name", "templateRef"))
        if (auto s = r_.get_string(t["name"], "templateRef.name")) ms.template_name = *s;
      if (auto n = t["namespace"])  // (else the canary's, as Flagger's)
        if (auto s = r_.get_string(n, "templateRef.namespace")) ms.template_namespace = *s;
    }
    if (auto p = m["provider"]) provider(p, ms.provider_type, ms.provider_address);
    if (auto q = m["query"])
      if (auto s = r_.get_string(q, "metric.query")) ms.query = *s;
    if (auto tv = m["templateVariables"]; tv && r_.expect_map(tv, "metric.templateVariables"))
      for (const auto& kv : tv)
        if (auto s = r_.get_string(kv.second, "templateVariables"))
          ms.template_variables[kv.first.as<std::string>()] = *s;
    bool builtin = ms.name == "request-success-rate" || ms.name == "request-duration";
    if (ms.template_name.empty() && ms.query.empty() && !builtin)
      r_.error(m, fmt::format("metric '{}': not a builtin (request-success-rate, request-duration); give templateRef, "
                              "or provider and query",
                              ms.name));
    if (!ms.query.empty() && ms.provider_address.empty())
      r_.error(m, fmt::format("metric '{}': an inline query needs a provider", ms.name));
    if (!ms.min && !ms.max && m["thresholdRange"]) r_.error(m["thresholdRange"], "thresholdRange: give min and/or max");
    an.metrics.push_back(std::move(ms));
  }

  void webhook(const YAML::Node& w, analysis_spec& an) {
    if (!r_.expect_map(w, "a webhook")) return;
    r_.check_keys(w, "webhook", {"name", "type", "url", "timeout", "metadata"});
    webhook_spec ws;
    if (r_.require(w, "name", "webhook"))
      if (auto s = r_.get_string(w["name"], "webhook.name")) ws.name = *s;
    ws.type = "rollout";
    if (auto t = w["type"]) {
      static constexpr std::string_view types[] = {
          "confirm-rollout",   "pre-rollout",  "rollout",  "confirm-traffic-increase",
          "confirm-promotion", "post-rollout", "rollback", "event"};
      auto s = r_.get_string(t, "webhook.type");
      if (s && std::find(std::begin(types), std::end(types), *s) == std::end(types))
        r_.error(t, fmt::format("webhook.type '{}' is not one of Flagger's", *s));
      else if (s)
        ws.type = *s;
    }
    if (r_.require(w, "url", "webhook"))
      if (auto s = r_.get_string(w["url"], "webhook.url")) {
        if (!s->starts_with("http://")) r_.error(w["url"], "webhook.url must be an http:// URL");
        ws.url = *s;
      }
    if (auto v = w["timeout"])
      if (auto d = r_.get_duration(v, "webhook.timeout")) ws.timeout = *d;
    if (auto md = w["metadata"]; md && r_.expect_map(md, "webhook.metadata"))
      for (const auto& kv : md)
        if (auto s = r_.get_string(kv.second, "webhook.metadata")) ws.metadata[kv.first.as<std::string>()] = *s;
    an.webhooks.push_back(std::move(ws));
  }

  void alert(const YAML::Node& a, analysis_spec& an) {
    if (!r_.expect_map(a, "an alert")) return;
    r_.check_keys(a, "alert", {"name", "severity", "providerRef"});
    alert_spec as;
    if (r_.require(a, "name", "alert"))
      if (auto s = r_.get_string(a["name"], "alert.name")) as.name = *s;
    if (auto v = a["severity"])
      if (auto s = r_.get_string(v, "alert.severity")) {
        if (*s != "info" && *s != "warn" && *s != "error") r_.error(v, "alert.severity: info, warn or error");
        as.severity = *s;
      }
    if (r_.require(a, "providerRef", "alert") && r_.expect_map(a["providerRef"], "alert.providerRef")) {
      const auto& p = a["providerRef"];
      r_.check_keys(p, "providerRef", {"name", "namespace"});
      if (r_.require(p, "name", "providerRef"))
        if (auto s = r_.get_string(p["name"], "providerRef.name")) as.provider_name = *s;
      if (auto n = p["namespace"])  // (else the canary's, as Flagger's)
        if (auto s = r_.get_string(n, "providerRef.namespace")) as.provider_namespace = *s;
    }
    an.alerts.push_back(std::move(as));
  }

  // Istio's HTTPMatchRequest, as Flagger's `match`: headers and queryParams
  // (and vane's cookies and query), turned into the proxy's rule alternatives.
  void match(const YAML::Node& m, analysis_spec& an) {
    if (!r_.expect_sequence(m, "analysis.match")) return;
    for (const auto& alt : m) {
      if (!r_.expect_map(alt, "a match")) continue;
      r_.check_keys(alt, "match", {"headers", "queryParams", "cookies", "query"});
      json::object out;
      for (auto [key, target] : {std::pair{"headers", "headers"}, std::pair{"queryParams", "query"},
                                 std::pair{"cookies", "cookies"}, std::pair{"query", "query"}}) {
        auto group = alt[key];
        if (!group || !r_.expect_map(group, key)) continue;
        json::object conds = out.contains(target) ? out[target].as_object() : json::object{};
        for (const auto& kv : group) {
          std::string name = kv.first.as<std::string>();
          const auto& matcher = kv.second;
          if (!matcher.IsMap() || matcher.size() != 1) {
            r_.error(matcher,
                     fmt::format("match {} '{}': give one of exact, prefix, suffix, regex, present", key, name));
            continue;
          }
          // (copies: a yaml-cpp iterator holds the pair it points to, so no reference may outlive it)
          auto first = matcher.begin();
          std::string kind = first->first.as<std::string>();
          const YAML::Node key_node = first->first;
          const YAML::Node value = first->second;
          auto k = match_kind_from_name(kind);
          if (!k) {
            r_.error(key_node, fmt::format("unknown matcher '{}'", kind));
            continue;
          }
          if (*k == string_match_kind::present) {
            conds[name] = json::object{{"present", true}};
            continue;
          }
          auto v = r_.get_string(value, fmt::format("match.{}.{}", key, name));
          if (!v) continue;
          if (*k == string_match_kind::regex) {  // checked as the proxy will compile it
            if (auto re = compile_regex(*v); !re) {
              r_.error(value, fmt::format("match {} '{}': {}", key, name, re.error));
              continue;
            }
          }
          conds[name] = json::object{{kind, *v}};
        }
        out[target] = std::move(conds);
      }
      if (out.empty()) r_.error(alt, "a match needs headers, queryParams, cookies or query");
      an.match.push_back(std::move(out));
    }
  }

  yaml_reader& r_;
  documents& out_;
  int line_;
  std::string name_;
};

}  // namespace

namespace {
void parse_document(const YAML::Node& doc, const std::string& file, int line, documents& out);
}  // namespace

void parse_documents(const std::string& text, const std::string& file, documents& out) {
  yaml_reader file_reader(file);
  auto docs = file_reader.parse_all(text);
  for (const auto& e : file_reader.errors()) out.errors.push_back(e);
  for (const auto& doc : docs) {
    if (!doc || doc.IsNull()) continue;
    const int line = doc.Mark().line + 1, column = doc.Mark().column + 1;
    const std::size_t ignored_before = out.ignored.size(), canaries_before = out.canaries.size(),
                      templates_before = out.templates.size(), providers_before = out.providers.size();
    try {
      parse_document(doc, file, line, out);
    } catch (const std::exception& e) {
      // A shape no check foresaw (yaml-cpp throws on, e.g., a map used as a key): this document is refused,
      // the others load.
      out.ignored.resize(ignored_before);
      out.canaries.resize(canaries_before);
      out.templates.resize(templates_before);
      out.providers.resize(providers_before);
      out.errors.push_back(config_error{file, line, column, fmt::format("document not readable: {}", e.what())});
    }
  }
}

namespace {

void parse_document(const YAML::Node& doc, const std::string& file, int line, documents& out) {
  {
    yaml_reader r(file);
    doc_parser p(r, out, line);
    std::size_t ignored_before = out.ignored.size();
    if (!r.expect_map(doc, "a document")) {
      out.errors.insert(out.errors.end(), r.errors().begin(), r.errors().end());
      return;
    }
    r.check_keys(doc, "document", {"apiVersion", "kind", "metadata", "spec", "status"});
    if (r.require(doc, "apiVersion", "document"))
      if (auto v = r.get_string(doc["apiVersion"], "apiVersion"); v && *v != api_version)
        r.error(doc["apiVersion"], fmt::format("apiVersion '{}': vane reads {}", *v, api_version));
    std::string kind;
    if (r.require(doc, "kind", "document"))
      if (auto v = r.get_string(doc["kind"], "kind")) kind = *v;
    r.require(doc, "metadata", "document");
    r.require(doc, "spec", "document");
    if (kind == "Canary") {
      canary_spec c;
      c.file = file;
      c.line = line;
      if (doc["metadata"]) p.metadata(doc["metadata"], c.name, c.ns, kind);
      if (doc["spec"]) p.canary(doc["spec"], c);
      if (r.ok()) out.canaries.push_back(std::move(c));
    } else if (kind == "MetricTemplate") {
      metric_template t;
      if (doc["metadata"]) p.metadata(doc["metadata"], t.name, t.ns, kind);
      if (doc["spec"]) p.metric_template_spec(doc["spec"], t);
      if (r.ok()) out.templates.push_back(std::move(t));
    } else if (kind == "AlertProvider") {
      alert_provider a;
      if (doc["metadata"]) p.metadata(doc["metadata"], a.name, a.ns, kind);
      if (doc["spec"]) p.alert_provider_spec(doc["spec"], a);
      if (r.ok()) out.providers.push_back(std::move(a));
    } else if (!kind.empty()) {
      r.error(doc["kind"], fmt::format("kind '{}': vane reads Canary, MetricTemplate and AlertProvider", kind));
    }
    if (!r.ok()) {
      out.ignored.resize(ignored_before);  // a refused document reports its errors, not its ignored fields
      out.errors.insert(out.errors.end(), r.errors().begin(), r.errors().end());
    }
  }
}

}  // namespace

std::map<std::string, std::string> read_document_files(const std::string& dir, std::error_code& ec) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> texts;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    auto ext = entry.path().extension();
    if (ext != ".yaml" && ext != ".yml") continue;
    std::string message;
    if (auto text = read_file(entry.path().string(), message)) texts[entry.path().string()] = *text;
  }
  return texts;
}

}  // namespace vane::control
