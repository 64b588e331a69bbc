#pragma once
// A small RFC 6902 JSON Patch applier for tests (add, remove, replace, test),
// to check what the admission webhook answers against what `inject` gives,
// and the base64 decoding of the answer's patch. Throws std::runtime_error on
// a patch that does not apply or text that is not base64.
#include <boost/json.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace vane::test {

// The reference tokens of a JSON Pointer, "~1" and "~0" decoded.
inline std::vector<std::string> json_pointer_tokens(const std::string& pointer) {
  std::vector<std::string> out;
  if (pointer.empty()) return out;
  if (pointer[0] != '/') throw std::runtime_error("not a JSON pointer: " + pointer);
  std::string token;
  for (std::size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      out.push_back(token);
      token.clear();
    } else if (pointer[i] == '~' && i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
      token += pointer[++i] == '0' ? '~' : '/';
    } else {
      token += pointer[i];
    }
  }
  return out;
}

inline std::string base64_decode(const std::string& text) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t bits = 0;
  int n = 0;
  for (char c : text) {
    if (c == '=') break;
    auto at = alphabet.find(c);
    if (at == std::string::npos) throw std::runtime_error(std::string("not base64: ") + c);
    bits = (bits << 6) | static_cast<std::uint32_t>(at);
    n += 6;
    if (n >= 8) {
      n -= 8;
      out += static_cast<char>((bits >> n) & 0xff);
    }
  }
  return out;
}

inline void json_patch_apply(boost::json::value& doc, const boost::json::array& patch) {
  for (const auto& op_value : patch) {
    const auto& op = op_value.as_object();
    const std::string name(op.at("op").as_string());
    auto tokens = json_pointer_tokens(std::string(op.at("path").as_string()));
    if (tokens.empty()) {
      if (name != "replace" && name != "add") throw std::runtime_error(name + " of the whole document");
      doc = op.at("value");
      continue;
    }
    boost::json::value* parent = &doc;
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      if (parent->is_object())
        parent = &parent->as_object().at(tokens[i]);
      else
        parent = &parent->as_array().at(std::stoul(tokens[i]));
    }
    const std::string& last = tokens.back();
    if (parent->is_object()) {
      auto& o = parent->as_object();
      if (name == "add") {
        o[last] = op.at("value");
      } else if (name == "replace") {
        o.at(last) = op.at("value");
      } else if (name == "remove") {
        if (o.erase(last) == 0) throw std::runtime_error("remove of a missing " + last);
      } else if (name == "test") {
        if (o.at(last) != op.at("value")) throw std::runtime_error("test failed at " + last);
      } else {
        throw std::runtime_error("unsupported op " + name);
      }
      continue;
    }
    auto& a = parent->as_array();
    std::size_t index = last == "-" ? a.size() : std::stoul(last);
    if (name == "add") {
      if (index > a.size()) throw std::runtime_error("add past the end at " + last);
      a.insert(a.begin() + static_cast<std::ptrdiff_t>(index), op.at("value"));
    } else if (name == "replace") {
      a.at(index) = op.at("value");
    } else if (name == "remove") {
      if (index >= a.size()) throw std::runtime_error("remove past the end at " + last);
      a.erase(a.begin() + static_cast<std::ptrdiff_t>(index));
    } else if (name == "test") {
      if (a.at(index) != op.at("value")) throw std::runtime_error("test failed at " + last);
    } else {
      throw std::runtime_error("unsupported op " + name);
    }
  }
}

}  // namespace vane::test
