#include "filters/rules/rules.hpp"

#include "common/ows.hpp"
#include "common/regex.hpp"
#include "filters/split/split.hpp"

namespace vane {

std::optional<string_matcher> string_matcher::make(string_match_kind kind, std::string value, std::string& error) {
  string_matcher m;
  m.kind_ = kind;
  if (kind == string_match_kind::regex) {
    auto compiled = compile_regex(value);
    if (!compiled) {
      error = std::move(compiled.error);
      return std::nullopt;
    }
    m.re_ = std::move(compiled.re);
  }
  m.value_ = std::move(value);
  return m;
}

bool string_matcher::matches(std::optional<std::string_view> value) const {
  if (kind_ == string_match_kind::present) return value.has_value();
  if (!value) return false;
  switch (kind_) {
    case string_match_kind::exact:
      return *value == value_;
    case string_match_kind::prefix:
      return value->starts_with(value_);
    case string_match_kind::suffix:
      return value->ends_with(value_);
    case string_match_kind::regex:
      return RE2::FullMatch(re2::StringPiece(value->data(), value->size()), *re_);
    case string_match_kind::present:
      break;
  }
  return false;
}

namespace {

bool holds(const match_condition& c, const request_view& req) {
  switch (c.source) {
    case match_source::header:
      return c.matcher.matches(req.header(c.name));
    case match_source::cookie:
      return c.matcher.matches(find_cookie(req, c.name));
    case match_source::query:
      return c.matcher.matches(find_query_param(req.target(), c.name));
  }
  return false;
}

}  // namespace

std::optional<std::string_view> find_cookie(const request_view& req, std::string_view name) {
  // RFC 6265 §4.2.1: cookie-pair *( ";" SP cookie-pair ); be lenient about spaces.
  for (std::string_view field : req.headers("cookie")) {
    while (!field.empty()) {
      std::size_t semi = field.find(';');
      std::string_view pair = trim_ows(field.substr(0, semi));
      field = semi == std::string_view::npos ? std::string_view{} : field.substr(semi + 1);
      std::size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim_ows(pair.substr(0, eq)) != name) continue;
      std::string_view value = trim_ows(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      return value;
    }
  }
  return std::nullopt;
}

std::optional<std::string_view> find_query_param(std::string_view target, std::string_view name) {
  std::size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  if (std::size_t hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
  }
  return std::nullopt;
}

bool rule_holds(const std::vector<match_alternative>& any, const request_view& req) {
  for (const auto& alt : any) {
    bool all = true;
    for (const auto& c : alt.all) {
      if (!holds(c, req)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

std::uint32_t sticky_point(std::string_view key) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return static_cast<std::uint32_t>((static_cast<unsigned __int128>(h) * split_points) >> 64);
}

}  // namespace vane
