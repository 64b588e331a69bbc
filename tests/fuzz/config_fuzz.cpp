// libFuzzer: vane-proxy's config loader on arbitrary text (what `--validate`
// and a reload read): it must refuse with errors, never crash.
#include <cstdint>
#include <string>

#include "proxy/config_load.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<vane::config_error> errors;
  auto c = vane::proxy::parse_proxy_config(text, "fuzz.yaml", errors);
  if (!c && errors.empty()) __builtin_trap();  // a refusal always says why
  return 0;
}
