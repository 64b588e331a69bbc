#include "control/inject_manifests.hpp"

#include <fmt/format.h>

#include <boost/json/value.hpp>
#include <map>

#include "common/yaml_json.hpp"

namespace vane::control {

namespace json = boost::json;

namespace {

// One "---"-separated piece of the input, kept as text to write back unchanged.
struct chunk {
  std::string marker;               // its "---" line ("" before the first one)
  std::string body;                 // the lines up to the next marker
  int first_line = 0;               // 0-based line of what is parsed (the marker's, when it holds content)
  bool marker_has_content = false;  // "--- {a: 1}": the marker line is part of the document
  std::vector<json::value> docs;
  std::vector<YAML::Mark> marks;
  bool changed = false;
};

bool is_marker(std::string_view line) {
  return line.starts_with("---") &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' || line[3] == '\n');
}

std::vector<chunk> split(const std::string& text) {
  std::vector<chunk> out(1);
  int line_no = 0;
  for (std::size_t at = 0; at < text.size(); ++line_no) {
    std::size_t nl = text.find('\n', at);
    std::size_t end = nl == std::string::npos ? text.size() : nl + 1;
    std::string_view line(text.data() + at, end - at);
    if (is_marker(line)) {
      chunk c;
      c.marker = std::string(line);
      auto rest = line.substr(3);
      auto first = rest.find_first_not_of(" \t\r\n");
      c.marker_has_content = first != std::string_view::npos && rest[first] != '#';
      c.first_line = c.marker_has_content ? line_no : line_no + 1;
      out.push_back(std::move(c));
    } else {
      out.back().body += line;
    }
    at = end;
  }
  return out;
}

// The comment and blank lines a document starts with (kept when it is written again).
std::string leading_comments(const std::string& body) {
  std::size_t at = 0;
  while (at < body.size()) {
    std::size_t nl = body.find('\n', at);
    std::size_t end = nl == std::string::npos ? body.size() : nl + 1;
    std::string_view line(body.data() + at, end - at);
    auto first = line.find_first_not_of(" \t\r\n");
    if (first != std::string_view::npos && line[first] != '#') break;
    at = end;
  }
  return body.substr(0, at);
}

std::string_view string_field(const json::object& o, std::string_view a, std::string_view b = {}) {
  const auto* v = o.if_contains(a);
  if (v && !b.empty()) v = v->is_object() ? v->get_object().if_contains(b) : nullptr;
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

std::string_view label_of(const json::object& o, std::string_view label) {
  const auto* m = o.if_contains("metadata");
  const auto* labels = m && m->is_object() ? m->get_object().if_contains("labels") : nullptr;
  return labels && labels->is_object() ? string_field(labels->get_object(), label) : std::string_view();
}

// Where a kind keeps its pod template, and the path of it for messages.
json::object* pod_template_of(json::object& doc, std::string& path) {
  const std::string_view kind = string_field(doc, "kind");
  if (kind == "Pod") return &doc;
  std::vector<std::string_view> keys;
  if (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" || kind == "ReplicaSet" || kind == "Job")
    keys = {"spec", "template"};
  else if (kind == "CronJob")
    keys = {"spec", "jobTemplate", "spec", "template"};
  else
    return nullptr;
  json::object* at = &doc;
  for (auto key : keys) {
    auto* next = at->if_contains(key);
    if (!next || !next->is_object()) return nullptr;
    at = &next->get_object();
    path += std::string(key) + ".";
  }
  return at;
}

class injector {
 public:
  injector(const std::string& file, const inject_options& options, inject_manifests_result& out)
      : file_(file), options_(options), out_(out) {}

  void learn_namespace(const json::value& doc) {
    if (!doc.is_object() || string_field(doc.get_object(), "kind") != "Namespace") return;
    auto mode = label_of(doc.get_object(), inject_label);
    if (!mode.empty()) namespaces_[std::string(string_field(doc.get_object(), "metadata", "name"))] = mode;
  }

  // Injects the document's pod templates; true when it changed.
  bool visit(json::value& doc, const YAML::Mark& mark) {
    if (!doc.is_object()) {
      error(mark, "a manifest must be a mapping (a Kubernetes object), not " +
                      std::string(doc.is_array() ? "a list" : "a scalar"));
      return false;
    }
    auto& o = doc.get_object();
    if (string_field(o, "kind") == "List") {
      bool changed = false;
      if (auto* items = o.if_contains("items"); items && items->is_array())
        for (auto& item : items->get_array()) changed = (item.is_object() && visit(item, mark)) || changed;
      return changed;
    }
    std::string path;
    json::object* pod = pod_template_of(o, path);
    if (!pod) return false;
    const std::string what = fmt::format("{} {}", string_field(o, "kind"), string_field(o, "metadata", "name"));
    inject_options options = options_;
    auto ns = namespaces_.find(std::string(string_field(o, "metadata", "namespace")));
    if (ns != namespaces_.end() && ns->second == "disabled") {
      note(mark, what, "not injected (its namespace is labelled vane.dev/inject: disabled)");
      return false;
    }
    options.all = options.all || (ns != namespaces_.end() && ns->second == "enabled");
    auto r = inject_pod(*pod, options, path);
    switch (r.outcome) {
      case inject_outcome::injected:
        note(mark, what, "injected");
        return true;
      case inject_outcome::already_injected:
        note(mark, what, "already injected");
        break;
      case inject_outcome::not_opted_in:
        note(mark, what, "not injected (no vane.dev/inject: enabled; --all injects every pod)");
        break;
      case inject_outcome::opted_out:
        note(mark, what, "not injected (vane.dev/inject: disabled)");
        break;
      case inject_outcome::malformed:
        error(mark, what + ": " + r.message);
        break;
    }
    return false;
  }

 private:
  void note(const YAML::Mark& at, const std::string& what, std::string_view how) {
    out_.notes.push_back(fmt::format("{}:{}: {}: {}", file_, at.line + 1, what, how));
  }
  void error(const YAML::Mark& at, std::string message) {
    out_.errors.push_back(
        config_error{file_, at.line >= 0 ? at.line + 1 : 1, at.column >= 0 ? at.column + 1 : 1, std::move(message)});
  }

  const std::string& file_;
  const inject_options& options_;
  inject_manifests_result& out_;
  std::map<std::string, std::string_view, std::less<>> namespaces_;  // name -> enabled | disabled
};

}  // namespace

inject_manifests_result inject_manifests(const std::string& text, const std::string& file_name,
                                         const inject_options& options) {
  inject_manifests_result out;
  auto chunks = split(text);
  yaml_reader reader(file_name);
  for (auto& c : chunks) {
    // Padded with the lines before it, so that marks are lines of the whole input.
    std::string parsed(static_cast<std::size_t>(c.first_line), '\n');
    parsed += c.marker_has_content ? c.marker + c.body : c.body;
    for (const auto& node : reader.parse_all(parsed)) {
      if (node.IsNull()) continue;  // an empty document, or only comments
      auto value = yaml_to_json(node, reader);
      if (!value) break;
      c.docs.push_back(std::move(*value));
      c.marks.push_back(node.Mark());
    }
  }
  out.errors = reader.errors();
  injector inj(file_name, options, out);
  for (const auto& c : chunks)
    for (const auto& d : c.docs) inj.learn_namespace(d);
  for (auto& c : chunks)
    for (std::size_t i = 0; i < c.docs.size(); ++i) c.changed = inj.visit(c.docs[i], c.marks[i]) || c.changed;
  if (!out.errors.empty()) return out;
  for (const auto& c : chunks) {
    if (!c.changed) {
      out.text += c.marker + c.body;
      continue;
    }
    out.text += c.marker_has_content ? "---\n" : c.marker;
    if (!out.text.empty() && out.text.back() != '\n') out.text += '\n';
    out.text += leading_comments(c.body);
    for (std::size_t i = 0; i < c.docs.size(); ++i) out.text += (i > 0 ? "---\n" : "") + json_to_yaml(c.docs[i]);
  }
  return out;
}

}  // namespace vane::control
