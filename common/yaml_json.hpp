#pragma once
// YAML documents as JSON values and back, for code that works on Kubernetes
// objects in their JSON form (vane-control inject, the admission webhook).
//
// Reading resolves plain scalars as Kubernetes' YAML reader does (YAML 1.1:
// `yes`/`on` are booleans, `0644` is octal, `~` is null); quoted and block
// scalars are strings. Writing gives block style with two-space indents, keys
// in the object's order, and quotes every string that would read back as
// something else (for YAML 1.1 and 1.2 readers alike). Comments and anchors
// do not survive the round trip.
#include <yaml-cpp/yaml.h>

#include <boost/json/value.hpp>
#include <optional>
#include <string>

#include "common/yaml_doc.hpp"

namespace vane {

// The node as JSON; nullopt with an error recorded at the offending node
// (a key that is not a scalar) when it has no JSON form.
std::optional<boost::json::value> yaml_to_json(const YAML::Node& node, yaml_reader& reader);

// The value as a YAML document (no "---"), ending with a newline.
std::string json_to_yaml(const boost::json::value& value);

}  // namespace vane
