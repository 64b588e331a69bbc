#include "tests/support/fake_apiserver_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <exception>

#include "tests/support/json_patch.hpp"

namespace vane::test::fake_api {

namespace json = boost::json;

namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto at = s.find(sep, start);
    out.emplace_back(s.substr(start, at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

std::string text_at(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

json::object& metadata(json::object& o) {
  auto& m = o["metadata"];
  if (!m.is_object()) m = json::object();
  return m.as_object();
}

const json::object* metadata(const json::object& o) {
  auto it = o.find("metadata");
  return it != o.end() && it->value().is_object() ? &it->value().as_object() : nullptr;
}

std::string key_of(std::string_view ns, std::string_view name) {
  return ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name);
}

// RFC 7386 JSON Merge Patch: objects merged key by key, null removes, anything else replaces.
json::value merge_patch(const json::value& target, const json::value& patch) {
  if (!patch.is_object()) return patch;
  json::object out = target.is_object() ? target.as_object() : json::object();
  for (const auto& [key, value] : patch.as_object()) {
    if (value.is_null())
      out.erase(key);
    else
      out[key] = merge_patch(out.contains(key) ? out.at(key) : json::value(), value);
  }
  return out;
}

// The object without metadata and status: what a change of bumps metadata.generation
// (API conventions: generation counts changes to the desired state).
json::object desired_state(json::object o) {
  o.erase("metadata");
  o.erase("status");
  return o;
}

}  // namespace

bool resource_path::custom() const {
  if (group.find('.') == std::string::npos) return false;  // "", apps, batch, autoscaling, policy
  return !(group.size() > 7 && group.ends_with(".k8s.io"));
}

bool resource_path::has_status() const {
  for (const char* none :
       {"configmaps", "secrets", "leases", "events", "endpointslices", "endpoints", "serviceaccounts"})
    if (plural == none) return false;
  return true;
}

std::optional<resource_path> parse_path(std::string_view path) {
  auto parts = split(path.substr(path.starts_with('/') ? 1 : 0), '/');
  resource_path p;
  std::size_t i = 0;
  if (parts.size() >= 2 && parts[0] == "api") {
    p.version = parts[1];
    i = 2;
  } else if (parts.size() >= 3 && parts[0] == "apis") {
    p.group = parts[1];
    p.version = parts[2];
    i = 3;
  } else {
    return std::nullopt;
  }
  std::vector<std::string> rest(parts.begin() + static_cast<std::ptrdiff_t>(i), parts.end());
  // namespaces/NS/PLURAL...: namespaced; namespaces or namespaces/NS alone: the Namespace objects.
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    p.ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  if (rest.empty() || rest.size() > 3) return std::nullopt;
  for (const auto& segment : rest)
    if (segment.empty()) return std::nullopt;
  p.plural = rest[0];
  if (rest.size() >= 2) p.name = rest[1];
  if (rest.size() == 3) p.subresource = rest[2];
  return p;
}

std::optional<std::map<std::string, std::string>> parse_selector(std::string_view selector) {
  std::map<std::string, std::string> out;
  if (selector.empty()) return out;
  for (const auto& term : split(selector, ',')) {
    auto eq = term.find('=');
    if (eq == std::string::npos || eq == 0 || term.find_first_of("!()") != std::string::npos) return std::nullopt;
    std::string value = term.substr(term[eq + 1] == '=' ? eq + 2 : eq + 1);
    out[term.substr(0, eq)] = value;
  }
  return out;
}

bool selected(const json::object& object, const std::map<std::string, std::string>& selector) {
  const json::object* m = metadata(object);
  const json::object* labels = nullptr;
  if (m && m->contains("labels") && m->at("labels").is_object()) labels = &m->at("labels").as_object();
  for (const auto& [key, value] : selector)
    if (!labels || text_at(*labels, key) != value) return false;
  return true;
}

reply status_reply(unsigned code, std::string_view reason, std::string message) {
  return reply{code, json::object{{"kind", "Status"},
                                  {"apiVersion", "v1"},
                                  {"metadata", json::object()},
                                  {"status", "Failure"},
                                  {"message", message},
                                  {"reason", reason},
                                  {"code", code}}};
}

namespace {

std::string what(const resource_path& p) {
  return p.plural + (p.group.empty() ? "" : "." + p.group) + " \"" + p.name + "\"";
}

}  // namespace

reply store::get(const resource_path& p) const {
  auto type = objects_.find(p.type());
  if (type != objects_.end()) {
    auto it = type->second.find(key_of(p.ns, p.name));
    if (it != type->second.end()) return reply{200, it->second};
  }
  return status_reply(404, "NotFound", what(p) + " not found");
}

reply store::list(const resource_path& p, const std::map<std::string, std::string>& selector) const {
  json::array items;
  if (auto type = objects_.find(p.type()); type != objects_.end())
    for (const auto& [key, object] : type->second)
      if ((p.ns.empty() || text_at(*metadata(object), "namespace") == p.ns) && selected(object, selector))
        items.push_back(object);
  // A list's resourceVersion is the store's at the time of the read: a watch from it misses nothing.
  return reply{200, json::object{{"kind", kind_of(p.type()) + "List"},
                                 {"apiVersion", p.group.empty() ? p.version : p.group + "/" + p.version},
                                 {"metadata", json::object{{"resourceVersion", std::to_string(version_)}}},
                                 {"items", std::move(items)}}};
}

std::optional<std::vector<const change*>> store::changes_since(const std::string& resource_type,
                                                               std::uint64_t since) const {
  if (since < compacted_) return std::nullopt;
  std::vector<const change*> out;
  for (const auto& c : history_)
    if (c.version > since && c.resource_type == resource_type) out.push_back(&c);
  return out;
}

std::vector<const json::object*> store::objects(const std::string& resource_type) const {
  std::vector<const json::object*> out;
  if (auto type = objects_.find(resource_type); type != objects_.end())
    for (const auto& [key, object] : type->second) out.push_back(&object);
  return out;
}

std::string store::kind_of(const std::string& resource_type) const {
  auto it = kinds_.find(resource_type);
  return it == kinds_.end() ? "" : it->second;
}

void store::record(std::string type, const resource_path& p, const json::object& object) {
  history_.push_back(change{version_, std::move(type), p.type(), object});
  if (on_change) on_change(history_.back());
}

reply store::create(const resource_path& p, std::string_view body) {
  json::object object;
  try {
    auto v = json::parse(body);
    if (!v.is_object()) return status_reply(400, "BadRequest", "the body is not a JSON object");
    object = std::move(v.as_object());
  } catch (const std::exception& e) {
    return status_reply(400, "BadRequest", std::string("the body is not JSON: ") + e.what());
  }
  auto& m = metadata(object);
  std::string name = text_at(m, "name");
  if (name.empty()) return status_reply(422, "Invalid", "metadata.name: Required value: name is required");
  std::string ns = text_at(m, "namespace");
  if (!ns.empty() && ns != p.ns)
    return status_reply(400, "BadRequest",
                        "the namespace of the provided object does not match the namespace sent on the request");
  resource_path at = p;
  at.name = name;
  auto& objects = objects_[p.type()];
  if (objects.contains(key_of(p.ns, name))) return status_reply(409, "AlreadyExists", what(at) + " already exists");
  // With a status subresource, status is not set on create (the strategies' PrepareForCreate).
  if (p.has_status()) object.erase("status");
  ++version_;
  if (!p.ns.empty()) m["namespace"] = p.ns;
  m["uid"] = "00000000-0000-4000-8000-" + std::to_string(1000000000000 + ++uids_);
  m["resourceVersion"] = std::to_string(version_);
  m["generation"] = 1;
  m["creationTimestamp"] = "2024-01-01T00:00:00Z";
  if (!object.contains("apiVersion")) object["apiVersion"] = p.group.empty() ? p.version : p.group + "/" + p.version;
  if (auto kind = text_at(object, "kind"); !kind.empty()) kinds_[p.type()] = kind;
  objects[key_of(p.ns, name)] = object;
  record("ADDED", p, object);
  return reply{201, object};
}

reply store::update(const resource_path& p, std::string_view body) {
  json::object next;
  try {
    auto v = json::parse(body);
    if (!v.is_object()) return status_reply(400, "BadRequest", "the body is not a JSON object");
    next = std::move(v.as_object());
  } catch (const std::exception& e) {
    return status_reply(400, "BadRequest", std::string("the body is not JSON: ") + e.what());
  }
  std::string name = text_at(metadata(next), "name");
  if (name != p.name)
    return status_reply(400, "BadRequest",
                        "the name of the object (" + name + ") does not match the name on the URL (" + p.name + ")");
  std::string sent = text_at(metadata(next), "resourceVersion");
  return write(p, std::move(next), sent);
}

reply store::patch(const resource_path& p, std::string_view content_type, std::string_view body) {
  auto media = content_type.substr(0, content_type.find(';'));
  if (media == "application/strategic-merge-patch+json") {
    // Custom resources have no Go types to tell merge keys: the server refuses (CRD docs, "Advanced topics").
    if (p.custom())
      return status_reply(415, "UnsupportedMediaType",
                          "the body of the request was in an unknown format - accepted media types include: "
                          "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
    return status_reply(415, "UnsupportedMediaType", "the fake API server does not implement strategic merge patch");
  }
  if (media != "application/merge-patch+json" && media != "application/json-patch+json")
    return status_reply(415, "UnsupportedMediaType", "the fake API server does not take " + std::string(media));
  reply current = get(p);
  if (current.status != 200) return current;
  json::value patched = current.body;
  try {
    auto patch = json::parse(body);
    if (media == "application/merge-patch+json") {
      patched = merge_patch(patched, patch);
    } else {
      if (!patch.is_array()) return status_reply(400, "BadRequest", "a JSON patch must be an array");
      test::json_patch_apply(patched, patch.as_array());
    }
  } catch (const std::exception& e) {
    return status_reply(422, "Invalid", std::string("the patch does not apply: ") + e.what());
  }
  if (!patched.is_object()) return status_reply(422, "Invalid", "the patched object is not an object");
  // A resourceVersion in the patch is a precondition, as in a PUT; without one a patch always applies.
  std::string sent = text_at(metadata(patched.as_object()), "resourceVersion");
  return write(p, std::move(patched.as_object()), sent);
}

reply store::write(const resource_path& p, json::object next, const std::string& sent_version) {
  auto& objects = objects_[p.type()];
  auto it = objects.find(key_of(p.ns, p.name));
  if (it == objects.end()) return status_reply(404, "NotFound", what(p) + " not found");
  const json::object& old = it->second;
  const json::object* old_meta = metadata(old);
  // Optimistic concurrency: a write naming another resourceVersion than the stored one is refused.
  // Custom resources must name one (their updates are never unconditional).
  if (sent_version.empty() && p.custom())
    return status_reply(422, "Invalid",
                        what(p) +
                            " is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified "
                            "for an update");
  if (!sent_version.empty() && sent_version != text_at(*old_meta, "resourceVersion"))
    return status_reply(409, "Conflict",
                        "Operation cannot be fulfilled on " + what(p) +
                            ": the object has been modified; please apply your changes to the latest version and "
                            "try again");
  if (p.subresource == "status") {
    // PUT/PATCH on /status changes status only.
    json::object only_status = old;
    if (next.contains("status"))
      only_status["status"] = next["status"];
    else
      only_status.erase("status");
    next = std::move(only_status);
  } else if (p.has_status()) {
    // ... and on the main resource everything but status.
    if (old.contains("status"))
      next["status"] = old.at("status");
    else
      next.erase("status");
  }
  auto& m = metadata(next);
  for (const char* fixed : {"name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion"})
    if (old_meta->contains(fixed))
      m[fixed] = old_meta->at(fixed);
    else
      m.erase(fixed);
  // A write that changes nothing is not stored: no new resourceVersion, no event.
  if (next == old) return reply{200, old};
  if (desired_state(next) != desired_state(old)) m["generation"] = m["generation"].to_number<std::int64_t>() + 1;
  ++version_;
  m["resourceVersion"] = std::to_string(version_);
  it->second = next;
  record("MODIFIED", p, next);
  return reply{200, next};
}

reply store::remove(const resource_path& p) {
  auto& objects = objects_[p.type()];
  auto it = objects.find(key_of(p.ns, p.name));
  if (it == objects.end()) return status_reply(404, "NotFound", what(p) + " not found");
  json::object last = std::move(it->second);
  objects.erase(it);
  ++version_;
  metadata(last)["resourceVersion"] = std::to_string(version_);
  record("DELETED", p, last);
  collect_dependents(text_at(metadata(last), "uid"));
  return reply{200, last};
}

// The garbage collector's background deletion, done at once: the objects whose ownerReferences name the
// deleted object's uid go too (their only owner, here), and theirs after them.
void store::collect_dependents(const std::string& uid) {
  if (uid.empty()) return;
  std::vector<std::string> gone;
  for (auto& [type, objects] : objects_) {
    for (auto it = objects.begin(); it != objects.end();) {
      const json::object* m = it->second.if_contains("metadata") ? it->second.at("metadata").if_object() : nullptr;
      const json::value* owners = m ? m->if_contains("ownerReferences") : nullptr;
      bool owned = false;
      if (owners && owners->is_array())
        for (const auto& o : owners->as_array())
          owned = owned || (o.is_object() && text_at(o.as_object(), "uid") == uid);
      if (!owned) {
        ++it;
        continue;
      }
      json::object last = std::move(it->second);
      it = objects.erase(it);
      ++version_;
      metadata(last)["resourceVersion"] = std::to_string(version_);
      resource_path where;
      const auto slash = type.rfind('/');
      where.group = type.substr(0, slash);
      where.plural = type.substr(slash + 1);
      record("DELETED", where, last);
      gone.push_back(text_at(metadata(last), "uid"));
    }
  }
  for (const auto& u : gone) collect_dependents(u);
}

}  // namespace vane::test::fake_api
