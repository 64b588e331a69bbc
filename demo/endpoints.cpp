#include "demo/endpoints.hpp"

#include <boost/json.hpp>
#include <cstdlib>

namespace vane::demo {

namespace json = boost::json;

std::uint64_t begin_service(state& st, const http_request& req) {
  if (req.received > 0) st.last_body = req.small_body;
  st.last_host = req.host;
  return st.requests++;
}

http_reply answer(state& st, const http_request& req, std::uint64_t n) {
  http_reply r;
  const std::string_view path = req.path;
  if (path == "/healthz") {
    r.body = "ok\n";
    return r;
  }
  r.content_type = "application/json";
  if (path == "/_demo/stats") {
    r.body = json::serialize(stats_json(st)) + "\n";
  } else if (path == "/_demo/config") {
    if (req.method != "PUT" && req.method != "POST") {
      r.status = 405;
      r.body = R"({"error":"use PUT with a JSON body"})"
               "\n";
    } else if (auto err = apply_config(st, req.small_body); !err.empty()) {
      r.status = 400;
      r.body = json::serialize(json::object{{"error", err}}) + "\n";
    } else {
      r.body = json::serialize(stats_json(st)) + "\n";
    }
  } else if (is_service(path) && st.s.reset_percent > 0 && pick(n, st.s.reset_percent)) {
    ++st.resets;
    r.what = http_reply::kind::reset;
  } else if (is_service(path) && st.s.error_percent > 0 && pick(n, st.s.error_percent)) {
    ++st.errors;
    r.status = st.s.error_status;
    r.body = json::serialize(json::object{{"version", st.s.version}, {"error", "injected failure"}}) + "\n";
  } else if (path.starts_with("/bytes/")) {
    r.what = http_reply::kind::bytes;
    r.content_type = "application/octet-stream";
    r.bytes = std::strtoull(std::string(path.substr(7)).c_str(), nullptr, 10);
    r.chunked = req.target.find("chunked=1") != std::string_view::npos;
  } else {
    json::object o{{"version", st.s.version}, {"hostname", st.hostname}, {"method", req.method}, {"path", path}};
    if (path == "/headers") o["headers"] = req.headers;
    if (req.has_body) {
      o["received"] = req.received;
      o["checksum"] = std::to_string(req.checksum);
    }
    r.body = json::serialize(o) + "\n";
  }
  return r;
}

}  // namespace vane::demo
