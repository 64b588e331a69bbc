#include "control/admission.hpp"

#include <fmt/format.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/json_patch.hpp"

namespace vane::control {

namespace json = boost::json;

std::string base64_encode(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    auto n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
             static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
             static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += alphabet[(n >> shift) & 63];
  }
  if (i < bytes.size()) {
    auto n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

std::string_view string_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

admission_result refuse(const std::string& message) {
  admission_result r;
  r.log_line = "refused a review: " + message;
  r.reply = http_error_reply(400, message);
  return r;
}

// "demo/frontend-7d9f-*": the pod's namespace and name (its generateName when it has no name yet).
std::string pod_name(const json::object& request, const json::object& pod) {
  std::string ns(string_at(request, "namespace"));
  std::string name(string_at(request, "name"));
  if (const auto* m = pod.if_contains("metadata"); name.empty() && m && m->is_object()) {
    name = string_at(m->get_object(), "name");
    if (name.empty()) name = std::string(string_at(m->get_object(), "generateName")) + "*";
  }
  std::string out = (ns.empty() ? "" : ns + "/") + name;
  // Names are checked by the API server only after admission: a control character (a newline in a
  // generateName) would start a line of its own in the log.
  for (char& ch : out)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  return out;
}

}  // namespace

admission_result review_admission(std::string_view body, const inject_options& options) {
  boost::system::error_code ec;
  json::value review = json::parse(body, ec);
  if (ec) return refuse("not a JSON document: " + ec.message());
  if (!review.is_object()) return refuse("an AdmissionReview must be a JSON object");
  const auto& o = review.get_object();
  if (string_at(o, "kind") != "AdmissionReview" || string_at(o, "apiVersion") != "admission.k8s.io/v1")
    return refuse("expected kind AdmissionReview of apiVersion admission.k8s.io/v1");
  const auto* request_value = o.if_contains("request");
  if (!request_value || !request_value->is_object()) return refuse("request must be an object");
  const auto& request = request_value->get_object();
  const std::string_view uid = string_at(request, "uid");
  if (uid.empty()) return refuse("request.uid must be a non-empty string");
  const auto* object = request.if_contains("object");
  if (!object || !object->is_object()) return refuse("request.object must be an object");

  json::object response{{"uid", uid}, {"allowed", true}};
  admission_result r;
  const auto& pod = object->get_object();
  const std::string who = "pod " + pod_name(request, pod);
  const auto* kind = request.if_contains("kind");
  const bool is_pod = kind && kind->is_object() && string_at(kind->get_object(), "kind") == "Pod" &&
                      string_at(kind->get_object(), "group").empty();
  if (!is_pod) {
    r.log_line = "a review of something other than a Pod: allowed unchanged";
  } else {
    json::object injected = pod;
    inject_options every_pod_sent = options;  // the webhook configuration's selectors chose it
    every_pod_sent.all = true;
    auto result = inject_pod(injected, every_pod_sent);
    switch (result.outcome) {
      case inject_outcome::injected: {
        auto patch = json_patch_diff(pod, injected);
        response["patchType"] = "JSONPatch";
        response["patch"] = base64_encode(json::serialize(patch));
        r.log_line = who + ": injected";
        break;
      }
      case inject_outcome::already_injected:
        r.log_line = who + ": already injected";
        break;
      case inject_outcome::not_opted_in:
      case inject_outcome::opted_out:
        r.log_line = who + ": not injected (vane.dev/inject: disabled)";
        break;
      case inject_outcome::malformed:
        response["warnings"] = json::array{fmt::format("vane-proxy not injected: {}", result.message)};
        r.log_line = who + ": not injected: " + result.message;
        break;
    }
  }
  r.reply.body = json::serialize(json::object{
                     {"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", response}}) +
                 "\n";
  return r;
}

}  // namespace vane::control
