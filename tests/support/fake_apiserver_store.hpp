#pragma once
// The storage and the write rules of the fake Kubernetes API server
// (tests/support/fake_apiserver.cpp), without any networking: objects of any
// group/version/resource kept by namespace/name, one resourceVersion counter
// for everything (as etcd's revision), the history of changes for watches.
//
// It is a fake of our own, not a real API server: it follows the documented
// semantics for what vane's client uses, and no more. The rules and where they
// are documented:
// - resourceVersion, list, watch, 410 Gone, bookmarks:
//   https://kubernetes.io/docs/reference/using-api/api-concepts/
// - optimistic concurrency (409 Conflict on a stale resourceVersion), generation:
//   https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md
// - the /status subresource (writes to the main resource ignore status, writes
//   to /status ignore everything else), no strategic merge patch on custom resources:
//   https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
// Everything is called from one thread.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vane::test::fake_api {

// A request's path, parsed: /api/v1/... (core group) or /apis/GROUP/VERSION/...,
// then [namespaces/NS/]PLURAL[/NAME[/SUBRESOURCE]].
struct resource_path {
  std::string group, version, plural, ns, name, subresource;
  std::string type() const { return group + "/" + plural; }  // versions share storage, as in the real server
  // A custom resource (a CRD's): a group with a dot that is not one of Kubernetes' own (*.k8s.io).
  bool custom() const;
  // Whether the type has a /status subresource (built-in types with a status,
  // and custom resources, whose CRDs here all declare one, as Flagger's do).
  bool has_status() const;
};
std::optional<resource_path> parse_path(std::string_view path);

// label=value[,label=value...]; nullopt for any other selector syntax (not implemented by the fake).
std::optional<std::map<std::string, std::string>> parse_selector(std::string_view selector);
bool selected(const boost::json::object& object, const std::map<std::string, std::string>& selector);

struct reply {
  unsigned status = 200;
  boost::json::value body;
};
// A metav1.Status with the given code, reason and message.
reply status_reply(unsigned code, std::string_view reason, std::string message);

struct change {
  std::uint64_t version = 0;
  std::string type;           // "ADDED", "MODIFIED", "DELETED"
  std::string resource_type;  // resource_path::type()
  boost::json::object object;
};

class store {
 public:
  reply get(const resource_path& p) const;
  reply list(const resource_path& p, const std::map<std::string, std::string>& selector) const;
  reply create(const resource_path& p, std::string_view body);
  reply update(const resource_path& p, std::string_view body);  // PUT
  reply patch(const resource_path& p, std::string_view content_type, std::string_view body);
  reply remove(const resource_path& p);

  std::uint64_t version() const { return version_; }
  // The changes of a type after `since`, or nullopt when the history no
  // longer reaches back to it (a watch from there gets 410 Gone).
  std::optional<std::vector<const change*>> changes_since(const std::string& resource_type, std::uint64_t since) const;
  // The current objects of a type (a watch without a resourceVersion starts with them as ADDED).
  std::vector<const boost::json::object*> objects(const std::string& resource_type) const;
  // Forgets the history up to now, as etcd's compaction does.
  void compact() { compacted_ = version_; }
  std::string kind_of(const std::string& resource_type) const;  // the last kind stored for a type

  std::function<void(const change&)> on_change;  // after each write

 private:
  reply write(const resource_path& p, boost::json::object next, const std::string& sent_version);
  void record(std::string type, const resource_path& p, const boost::json::object& object);
  void collect_dependents(const std::string& uid);

  std::uint64_t version_ = 1;
  std::uint64_t compacted_ = 0;
  std::uint64_t uids_ = 0;
  std::map<std::string, std::map<std::string, boost::json::object>> objects_;  // type -> ns/name -> object
  std::map<std::string, std::string> kinds_;
  std::vector<change> history_;
};

}  // namespace vane::test::fake_api
