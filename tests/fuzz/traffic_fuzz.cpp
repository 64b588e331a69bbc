// libFuzzer: the body of PUT /routes/NAME/traffic on arbitrary bytes, against
// a config with rules, hash_on, mirror and faults possible; an accepted update
// is applied to the config as the proxy would.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "proxy/config_load.hpp"
#include "proxy/traffic.hpp"

namespace {

const vane::proxy::proxy_config& base() {
  static const vane::proxy::proxy_config c = [] {
    std::vector<vane::config_error> errors;
    auto parsed = vane::proxy::parse_proxy_config(R"(
listeners:
  - name: http
    address: 127.0.0.1:8080
    routes:
      - name: app
        split: [{cluster: primary, weight: 90}, {cluster: canary, weight: 10}]
clusters:
  - {name: primary, endpoints: [127.0.0.1:9898]}
  - {name: canary, endpoints: [127.0.0.1:9899]}
)",
                                                  "base.yaml", errors);
    if (!parsed) std::abort();
    return *parsed;
  }();
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  vane::proxy::route_overrides none;
  auto update = vane::proxy::parse_traffic_update(body, base(), none);
  if (update.overrides) {
    vane::proxy::overrides_map all{{"app", *update.overrides}};
    std::vector<std::string> dropped;
    (void)vane::proxy::apply_overrides(base(), all, dropped);
  } else if (update.error.empty()) {
    __builtin_trap();  // a refusal always says why
  }
  return 0;
}
