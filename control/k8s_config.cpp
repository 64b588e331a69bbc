#include "control/k8s_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace vane::control {

namespace {

std::string trimmed(const std::string& s) {
  const auto* space = " \t\r\n";
  auto b = s.find_first_not_of(space);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

// RFC 4648 base64, padding optional, white space (line breaks) skipped; nullopt on any other character.
std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  std::uint32_t bits = 0;
  int n = 0;
  for (char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '+') v = 62;
    if (c == '/') v = 63;
    if (c == '=') break;
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    n += 6;
    if (n >= 8) {
      n -= 8;
      out += static_cast<char>((bits >> n) & 0xff);
    }
  }
  return out;
}

// "https://HOST[:PORT][/PATH]" into config's host, port and base_path; a reason otherwise.
std::string set_server(k8s_config& config, const std::string& url) {
  constexpr std::string_view scheme = "https://";
  if (url.rfind(scheme, 0) != 0) return "the server must be an https:// URL: " + url;
  std::string_view rest = std::string_view(url).substr(scheme.size());
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  config.base_path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!config.base_path.empty() && config.base_path.back() == '/') config.base_path.pop_back();
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return "no ']' after an IPv6 address in " + url;
    config.host = std::string(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return "text after the address in " + url;
    if (!after.empty()) port = after.substr(1);
  } else {
    auto colon = authority.find(':');
    config.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (config.host.empty()) return "no host in " + url;
  if (port.empty()) port = "443";
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) || port.size() > 5 ||
      std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)
    return "not a port in " + url;
  config.port = std::string(port);
  config.server = url;
  return {};
}

}  // namespace

std::optional<k8s_config> k8s_in_cluster_config(const std::string& host_env, const std::string& port_env,
                                                const std::string& dir, std::string& error) {
  if (host_env.empty() || port_env.empty()) {
    error = "not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (or give --kubeconfig)";
    return std::nullopt;
  }
  k8s_config c;
  // An IPv6 service address comes bare, as client-go's net.JoinHostPort expects.
  bool v6 = host_env.find(':') != std::string::npos;
  if (auto why = set_server(c, "https://" + (v6 ? "[" + host_env + "]" : host_env) + ":" + port_env); !why.empty()) {
    error = "KUBERNETES_SERVICE_HOST/PORT: " + why;
    return std::nullopt;
  }
  c.token_file = dir + "/token";
  std::string why;
  auto token = read_file(c.token_file, why);
  if (!token || trimmed(*token).empty()) {
    error = token ? c.token_file + " is empty" : why;
    return std::nullopt;
  }
  auto ca = read_file(dir + "/ca.crt", why);
  if (!ca) {
    error = why;
    return std::nullopt;
  }
  c.ca_pem = *ca;
  // The namespace file is there whenever a token is mounted; "default" if not.
  if (auto ns = read_file(dir + "/namespace", why); ns && !trimmed(*ns).empty()) c.namespace_name = trimmed(*ns);
  return c;
}

std::optional<k8s_config> k8s_in_cluster_config(std::string& error) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");  // (read at start-up, before any thread)
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  return k8s_in_cluster_config(host ? host : "", port ? port : "", k8s_service_account_dir, error);
}

namespace {

// One kubeconfig being read: its reader (errors with FILE:LINE:COL) and folder.
struct kubeconfig_reader {
  yaml_reader& r;
  std::filesystem::path dir;

  // The entry of a named list ("clusters", "contexts", "users") whose name is `name`, and its `field` map.
  YAML::Node find(const YAML::Node& root, const char* list, const char* field, const std::string& name,
                  const YAML::Mark& named_at) {
    const YAML::Node entries = root[list];
    if (entries && !r.expect_sequence(entries, list)) return {};
    if (entries)
      for (const auto& e : entries) {
        if (!r.expect_map(e, fmt::format("an entry of {}", list))) continue;
        if (!e["name"] || !e["name"].IsScalar() || e["name"].Scalar() != name) continue;
        YAML::Node body = e[field];
        if (!body || body.IsNull()) return YAML::Node(YAML::NodeType::Map);
        if (!r.expect_map(body, fmt::format("{} {:?}", field, name))) return {};
        return body;
      }
    r.error(named_at, fmt::format("no {} named {:?} in {}", field, name, list));
    return {};
  }

  std::optional<std::string> text(const YAML::Node& map, const char* key) {
    const YAML::Node n = map[key];
    if (!n || n.IsNull()) return std::nullopt;
    return r.get_string(n, key);
  }

  // `key` (a file, relative to the kubeconfig) or `key-data` (base64): the content, nullopt when neither is given.
  std::optional<std::string> file_or_data(const YAML::Node& map, const std::string& key) {
    const std::string data_key = key + "-data";
    if (map[data_key] && !map[data_key].IsNull()) {
      auto data = r.get_string(map[data_key], data_key);
      if (!data) return std::nullopt;
      auto decoded = base64_decode(*data);
      if (!decoded) r.error(map[data_key], data_key + " is not base64");
      return decoded;
    }
    auto name = text(map, key.c_str());
    if (!name) return std::nullopt;
    std::filesystem::path path(*name);
    if (path.is_relative()) path = dir / path;
    std::string why;
    auto content = read_file(path.string(), why);
    if (!content) r.error(map[key], why);
    return content;
  }
};

}  // namespace

std::optional<k8s_config> k8s_kubeconfig(const std::string& file, const std::string& context,
                                         std::vector<config_error>& errors) {
  std::string why;
  auto content = read_file(file, why);
  if (!content) {
    errors.push_back(config_error{file, 1, 1, why});
    return std::nullopt;
  }
  yaml_reader r(file);
  kubeconfig_reader k{r, std::filesystem::path(file).parent_path()};
  const YAML::Node root = r.parse(*content);
  auto done = [&](std::optional<k8s_config> c) {
    errors.insert(errors.end(), r.errors().begin(), r.errors().end());
    return r.ok() ? std::move(c) : std::nullopt;
  };
  if (!r.ok() || !r.expect_map(root, "a kubeconfig")) return done(std::nullopt);

  std::string context_name = context;
  // (A mark, not a node: assigning a yaml-cpp node to another writes through to the first's content.)
  YAML::Mark named_at = root.Mark();
  if (context_name.empty()) {
    auto current = k.text(root, "current-context");
    if (!current || current->empty()) {
      if (r.ok()) r.error(root, "no current-context (give one, or a context with --kube-context)");
      return done(std::nullopt);
    }
    context_name = *current;
    named_at = root["current-context"].Mark();
  }
  const YAML::Node ctx = k.find(root, "contexts", "context", context_name, named_at);
  if (!ctx) return done(std::nullopt);
  auto cluster_name = k.text(ctx, "cluster");
  auto user_name = k.text(ctx, "user");
  if (!cluster_name) {
    if (r.ok()) r.error(ctx, fmt::format("context {:?} names no cluster", context_name));
    return done(std::nullopt);
  }
  k8s_config c;
  if (auto ns = k.text(ctx, "namespace"); ns && !ns->empty()) c.namespace_name = *ns;

  const YAML::Node cluster = k.find(root, "clusters", "cluster", *cluster_name, ctx["cluster"].Mark());
  if (cluster) {
    if (auto server = k.text(cluster, "server")) {
      if (auto bad = set_server(c, *server); !bad.empty()) r.error(cluster["server"], bad);
    } else if (r.ok()) {
      r.error(cluster, fmt::format("cluster {:?} has no server", *cluster_name));
    }
    if (auto ca = k.file_or_data(cluster, "certificate-authority")) c.ca_pem = *ca;
    if (auto name = k.text(cluster, "tls-server-name")) c.tls_server_name = *name;
    if (cluster["insecure-skip-tls-verify"])
      c.insecure_skip_tls_verify =
          r.get_bool(cluster["insecure-skip-tls-verify"], "insecure-skip-tls-verify").value_or(false);
    if (cluster["proxy-url"]) r.error(cluster["proxy-url"], "proxy-url is not supported");
  }

  if (user_name) {
    const YAML::Node user = k.find(root, "users", "user", *user_name, ctx["user"].Mark());
    if (user) {
      for (const char* plugin : {"exec", "auth-provider"})
        if (user[plugin])
          r.error(user[plugin],
                  fmt::format("{} credentials are not supported: give a token or a client certificate", plugin));
      if (user["username"] || user["password"])
        r.error(user, "basic authentication (username, password) is not supported");
      if (auto token = k.text(user, "token")) c.token = *token;
      if (auto token_file = k.text(user, "tokenFile")) {
        std::filesystem::path path(*token_file);
        c.token_file = (path.is_relative() ? k.dir / path : path).string();
      }
      if (auto cert = k.file_or_data(user, "client-certificate")) c.client_certificate_pem = *cert;
      if (auto key = k.file_or_data(user, "client-key")) c.client_key_pem = *key;
      if (c.client_certificate_pem.empty() != c.client_key_pem.empty())
        r.error(user, "a client certificate needs both client-certificate and client-key");
    }
  }
  return done(c);
}

k8s_token_source::k8s_token_source(const k8s_config& config, clock::duration reread)
    : token_(config.token), file_(config.token_file), reread_(reread) {}

const std::string& k8s_token_source::token(clock::time_point now) {
  if (file_.empty() || (read_at_ && now - *read_at_ < reread_)) return token_;
  read_at_ = now;
  std::string why;
  auto content = read_file(file_, why);
  if (!content || trimmed(*content).empty()) {
    last_error_ = content ? file_ + " is empty" : why;
    return token_;
  }
  token_ = trimmed(*content);
  last_error_.clear();
  ++reads_;
  return token_;
}

}  // namespace vane::control
