#pragma once
// The documents vane-control reads (DESIGN.md "vane-control"): Flagger's
// flagger.app/v1beta1 Canary, MetricTemplate and AlertProvider, with vane's
// own fields. Parsed per document: a bad one is refused with FILE:LINE:COL
// and the others of the same file still load.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "common/grpc.hpp"
#include "common/units.hpp"
#include "common/yaml_doc.hpp"

namespace vane::control {

struct step_spec {
  std::uint32_t weight = 0;
  std::optional<duration> interval;  // this step's own tick interval
};

struct metric_spec {
  std::string name;
  std::optional<double> min, max;  // thresholdRange
  duration interval = std::chrono::minutes(1);
  std::optional<std::uint64_t> min_requests;           // vane: fewer canary requests -> inconclusive
  bool relative_to_primary = false;                    // vane
  std::string template_name, template_namespace;       // (an empty namespace: the canary's)
  std::string provider_type, provider_address, query;  // vane: inline provider + query
  std::map<std::string, std::string> template_variables;
  bool builtin() const { return template_name.empty() && query.empty(); }
};

struct webhook_spec {
  std::string name, type, url;
  duration timeout = std::chrono::seconds(10);
  std::map<std::string, std::string> metadata;
};

struct alert_spec {
  std::string name, severity = "info", provider_name, provider_namespace;  // (an empty namespace: the canary's)
};

// vane: the proxies' guard for the run (docs/control.md, "Guard and fallback").
struct guard_spec {
  double max_error_percent = 20;
  std::uint64_t min_requests = 20;
  duration window = std::chrono::seconds(1);
};

inline constexpr std::uint32_t default_grpc_failures = grpc_default_failures;

struct analysis_spec {
  duration interval = std::chrono::minutes(1);
  std::uint32_t threshold = 1;
  std::uint32_t max_weight = 100;
  std::uint32_t step_weight = 0;
  std::vector<step_spec> step_weights;
  std::uint32_t step_weight_promotion = 0;
  std::uint32_t iterations = 0;
  boost::json::array match;  // proxy rule alternatives ({"headers": ..., "cookies": ..., "query": ...})
  bool mirror = false;
  std::uint32_t mirror_weight = 100;
  std::optional<std::string> affinity_cookie;
  std::string affinity_primary_cookie;
  duration affinity_max_age = std::chrono::hours(24);
  std::optional<double> abort_max_error_rate;
  std::uint64_t abort_min_requests = 0;
  std::optional<guard_spec> guard;  // vane
  bool fallback = false;            // vane: failed canary attempts go once to the primary
  // vane: the gRPC statuses request-success-rate (and abort) count as failures, a bit per code 0..16;
  // by default UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
  std::uint32_t grpc_failures = default_grpc_failures;
  std::vector<metric_spec> metrics;
  std::vector<webhook_spec> webhooks;
  std::vector<alert_spec> alerts;
};

struct promote_spec {
  std::string url;
  std::vector<std::string> command;
  duration timeout = std::chrono::minutes(5);
};

struct canary_spec {
  std::string name, ns = "default";
  std::string target;  // targetRef.name, else metadata.name
  std::optional<std::string> revision;
  std::string route, primary, canary;
  std::vector<std::string> proxies;  // http://HOST:PORT, dns:NAME:PORT or k8s:NAMESPACE/SERVICE:PORT
  std::optional<promote_spec> promote;
  analysis_spec analysis;
  bool skip_analysis = false;
  std::string file;
  int line = 0;
  std::string id() const { return name + "." + ns; }
};

struct metric_template {
  std::string name, ns = "default";
  std::string provider_type, provider_address, query;
};

struct alert_provider {
  std::string name, ns = "default";
  std::string type, address, channel, username;
};

struct documents {
  std::vector<canary_spec> canaries;
  std::vector<metric_template> templates;
  std::vector<alert_provider> providers;
  std::vector<config_error> errors;  // of refused documents
  std::vector<std::string> ignored;  // "FILE:LINE: Canary NAME: Flagger field 'service' ignored"
};

// Parses every document of a file into `out` (appending).
void parse_documents(const std::string& text, const std::string& file, documents& out);

// The text of every *.yaml and *.yml file directly in `dir`, by path; ec set when dir cannot be read.
std::map<std::string, std::string> read_document_files(const std::string& dir, std::error_code& ec);

}  // namespace vane::control
