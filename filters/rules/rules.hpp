#pragma once
// A/B rules (DESIGN.md "rules"): Istio/Flagger HTTPMatchRequest matchers on
// headers, cookies and query parameters. A rule holds a list of alternatives
// (OR); an alternative holds conditions that must all hold (AND). The first
// rule of a route that holds picks its cluster; otherwise the split decides.
//
// Rules see the request through request_view only (never a socket), so they
// are unit-tested and benchmarked on their own.
#include <re2/re2.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/match_vocabulary.hpp"

namespace vane {

// What a filter may read of a request.
class request_view {
 public:
  virtual ~request_view() = default;
  // The first value of a header field (name in lower case), or nullopt when absent.
  virtual std::optional<std::string_view> header(std::string_view name) const = 0;
  // Every value of a header field (Cookie may come in several fields).
  virtual std::vector<std::string_view> headers(std::string_view name) const = 0;
  // The request target as sent (origin form: path and query).
  virtual std::string_view target() const = 0;
  virtual std::string_view source_ip() const = 0;
};

// string_match_kind and its names (match_kind_from_name, match_kind_name): common/match_vocabulary.hpp.

class string_matcher {
 public:
  // nullopt with `error` set for a bad regex (RE2 syntax), or `present` with a value other than true.
  static std::optional<string_matcher> make(string_match_kind kind, std::string value, std::string& error);
  // `value` is nullopt when the header, cookie or parameter is absent: only
  // `present` can hold then (false), every other kind fails.
  bool matches(std::optional<std::string_view> value) const;
  string_match_kind kind() const { return kind_; }
  const std::string& value() const { return value_; }

 private:
  string_match_kind kind_ = string_match_kind::exact;
  std::string value_;
  std::shared_ptr<const RE2> re_;  // immutable, shared by the copies of a route table
};

enum class match_source { header, cookie, query };

struct match_condition {
  match_source source = match_source::header;
  std::string name;  // header names in lower case
  string_matcher matcher;
};

struct match_alternative {
  std::vector<match_condition> all;
};

// True when one of the alternatives holds (an empty list never holds).
bool rule_holds(const std::vector<match_alternative>& any, const request_view& req);

// The value of cookie `name` in the request's Cookie fields, or nullopt.
std::optional<std::string_view> find_cookie(const request_view& req, std::string_view name);
// The raw value of query parameter `name` (not percent-decoded), or nullopt.
std::optional<std::string_view> find_query_param(std::string_view target, std::string_view name);

// Sticky hashing (DESIGN.md "hash_on"): FNV-1a 64 over the key's bytes
// (offset basis 0xcbf29ce484222325, prime 0x100000001b3), then MurmurHash3's
// fmix64 finalizer so that keys differing in one byte land far apart, then
// scaled to [0, 10000) by a 128-bit multiply (the hash's high bits decide).
// Fixed forever: every proxy, replica and version maps a key to the same point.
std::uint32_t sticky_point(std::string_view key);

}  // namespace vane
