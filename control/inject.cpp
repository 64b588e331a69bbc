#include "control/inject.hpp"

#include <yaml-cpp/yaml.h>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <cstdlib>

#include "common/yaml_json.hpp"

namespace vane::control {

extern const char* const proxy_container_yaml;  // proxy_container.cpp, generated

namespace json = boost::json;

namespace {

// What the transform adds, taken apart once from the Component's patch.
struct sidecar {
  json::object pod_template;  // the patch's spec.template, as read
  json::object container;     // native sidecar form (restartPolicy: Always)
  json::array volumes;
  json::object annotations;
  std::int64_t grace_seconds = 0;
  std::string config_volume;  // the name of the volume that mounts the proxy config (a ConfigMap)
};

const json::object& object_at(const json::object& o, std::string_view key) {
  static const json::object none;
  const auto* v = o.if_contains(key);
  return v && v->is_object() ? v->get_object() : none;
}

// The file is part of the build, so a file this cannot read is a build that must not ship: stop loudly.
[[noreturn]] void broken_template(const char* what) {
  std::fprintf(stderr, "vane-control: k8s/base/proxy/proxy-container.yaml as compiled in: %s\n", what);
  std::abort();
}

sidecar load_sidecar() {
  yaml_reader reader("k8s/base/proxy/proxy-container.yaml");
  auto node = reader.parse(proxy_container_yaml);
  auto doc = reader.ok() ? yaml_to_json(node, reader) : std::nullopt;
  if (!doc || !doc->is_object()) broken_template("not a mapping");
  sidecar s;
  s.pod_template = object_at(object_at(doc->get_object(), "spec"), "template");
  const auto& spec = object_at(s.pod_template, "spec");
  const auto* init = spec.if_contains("initContainers");
  if (!init || !init->is_array() || init->get_array().size() != 1 || !init->get_array()[0].is_object())
    broken_template("spec.template.spec.initContainers must hold the one container");
  s.container = init->get_array()[0].get_object();
  if (const auto* v = spec.if_contains("volumes"); v && v->is_array()) s.volumes = v->get_array();
  for (const auto& v : s.volumes)
    if (v.is_object() && v.get_object().contains("configMap") && v.at("name").is_string())
      s.config_volume = v.at("name").get_string();
  if (s.config_volume.empty()) broken_template("no volume from a ConfigMap");
  s.annotations = object_at(object_at(s.pod_template, "metadata"), "annotations");
  if (const auto* g = spec.if_contains("terminationGracePeriodSeconds"); g && g->is_int64())
    s.grace_seconds = g->get_int64();
  return s;
}

const sidecar& the_sidecar() {
  static const sidecar s = load_sidecar();
  return s;
}

// A DNS subdomain (RFC 1123), as a ConfigMap's name must be.
bool config_map_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  return s.front() != '-' && s.front() != '.' && s.back() != '-' && s.back() != '.';
}

bool absent(const json::value* v) { return v == nullptr || v->is_null(); }

std::string_view string_at(const json::object* o, std::string_view key) {
  if (!o) return {};
  const auto* v = o->if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

// Entries of `list` (absent or null: none) are mappings; `has_name` is set when one is named `name`.
bool list_of_mappings(const json::value* list, std::string_view name, bool& has_name) {
  if (absent(list)) return true;
  if (!list->is_array()) return false;
  for (const auto& item : list->get_array()) {
    if (!item.is_object()) return false;
    has_name = has_name || string_at(&item.get_object(), "name") == name;
  }
  return true;
}

// `o[key]` as an object, made one when absent or null.
json::object& object_member(json::object& o, std::string_view key) {
  auto& v = o[key];
  if (!v.is_object()) v = json::object();
  return v.get_object();
}

json::array& array_member(json::object& o, std::string_view key) {
  auto& v = o[key];
  if (!v.is_array()) v = json::array();
  return v.get_array();
}

}  // namespace

const json::object& proxy_pod_template() { return the_sidecar().pod_template; }

inject_result inject_pod(json::object& pod, const inject_options& options, std::string_view path) {
  auto malformed = [&](std::string_view what) {
    return inject_result{inject_outcome::malformed, std::string(path) + std::string(what)};
  };
  // Read and check everything first: a pod is changed whole or not at all.
  const json::object* labels = nullptr;
  const json::object* annotations = nullptr;
  if (const auto* m = pod.if_contains("metadata"); !absent(m)) {
    if (!m->is_object()) return malformed("metadata must be a mapping");
    const auto* l = m->get_object().if_contains("labels");
    const auto* a = m->get_object().if_contains("annotations");
    if (!absent(l) && !l->is_object()) return malformed("metadata.labels must be a mapping");
    if (!absent(a) && !a->is_object()) return malformed("metadata.annotations must be a mapping");
    labels = absent(l) ? nullptr : &l->get_object();
    annotations = absent(a) ? nullptr : &a->get_object();
  }
  const std::string_view mode = string_at(labels, inject_label);
  if (mode == "disabled") return {inject_outcome::opted_out, {}};
  if (mode != "enabled" && !options.all) return {inject_outcome::not_opted_in, {}};
  const bool has_fleet_label = labels != nullptr && labels->contains(fleet_label);

  auto* spec_value = pod.if_contains("spec");
  if (!spec_value || !spec_value->is_object()) return malformed("spec must be a mapping");
  auto& spec = spec_value->get_object();
  bool already = false;
  const auto* containers = spec.if_contains("containers");
  if (absent(containers) || !list_of_mappings(containers, proxy_container_name, already))
    return malformed("spec.containers must be a list of mappings");
  if (!list_of_mappings(spec.if_contains("initContainers"), proxy_container_name, already))
    return malformed("spec.initContainers must be a list of mappings");
  if (already) return {inject_outcome::already_injected, {}};
  const sidecar& s = the_sidecar();
  bool unused = false;
  if (!list_of_mappings(spec.if_contains("volumes"), "", unused))
    return malformed("spec.volumes must be a list of mappings");
  std::string wanted_config;
  if (annotations && annotations->contains(proxy_config_annotation)) {
    wanted_config = std::string(string_at(annotations, proxy_config_annotation));
    if (!config_map_name(wanted_config))
      return malformed("metadata.annotations." + std::string(proxy_config_annotation) +
                       " must be the name of a ConfigMap");
  }

  // The changes.
  json::object container = s.container;
  if (options.classic_sidecar) {
    container.erase("restartPolicy");
    array_member(spec, "containers").push_back(std::move(container));
  } else {
    auto& init = array_member(spec, "initContainers");
    init.insert(init.begin(), std::move(container));
  }
  std::string config_name;
  for (const auto& v : s.volumes) {
    json::object volume = v.get_object();
    const bool config = string_at(&volume, "name") == s.config_volume;
    if (config) {
      auto& cm = object_member(volume, "configMap");
      if (!wanted_config.empty()) cm["name"] = wanted_config;
      config_name = std::string(string_at(&cm, "name"));
    }
    bool has = false;
    list_of_mappings(spec.if_contains("volumes"), string_at(&volume, "name"), has);
    if (!has) {
      array_member(spec, "volumes").push_back(std::move(volume));
    } else if (config) {
      // The pod's own volume of that name is what the proxy reads: its ConfigMap names the fleet (none
      // when it is not a ConfigMap).
      config_name.clear();
      for (const auto& own : spec.at("volumes").get_array())
        if (const auto* o = own.if_object(); o && string_at(o, "name") == s.config_volume)
          if (const auto* cm = o->if_contains("configMap"); cm && cm->is_object())
            config_name = std::string(string_at(&cm->get_object(), "name"));
    }
  }
  if (s.grace_seconds > 0) {
    auto* grace = spec.if_contains("terminationGracePeriodSeconds");
    if (!grace || !grace->is_number() || grace->to_number<double>() < static_cast<double>(s.grace_seconds))
      spec["terminationGracePeriodSeconds"] = s.grace_seconds;
  }
  // Last: adding metadata to the pod may move `spec`.
  auto& metadata = object_member(pod, "metadata");
  auto& pod_annotations = object_member(metadata, "annotations");
  for (const auto& [key, value] : s.annotations) pod_annotations[key] = value;
  if (!has_fleet_label && !config_name.empty() && config_name.size() <= 63 && config_map_name(config_name))
    object_member(metadata, "labels")[fleet_label] = config_name;  // a label value is at most 63 characters
  return {inject_outcome::injected, {}};
}

}  // namespace vane::control
