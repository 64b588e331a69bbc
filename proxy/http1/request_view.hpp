#pragma once
// What rules and sticky hashing read of a request: views into its head.
#include "filters/rules/rules.hpp"
#include "proxy/http1/message.hpp"

namespace vane::proxy {

class head_request_view final : public request_view {
 public:
  head_request_view(const message_head& h, std::string_view target, std::string_view ip)
      : h_(h), target_(target), ip_(ip) {}
  std::optional<std::string_view> header(std::string_view name) const override { return h_.find(name); }
  std::vector<std::string_view> headers(std::string_view name) const override {
    std::vector<std::string_view> out;
    for (const auto& f : h_.fields)
      if (boost::beast::iequals(f.name, name)) out.push_back(f.value);
    return out;
  }
  std::string_view target() const override { return target_; }
  std::string_view source_ip() const override { return ip_; }

 private:
  const message_head& h_;
  std::string_view target_, ip_;
};

}  // namespace vane::proxy
