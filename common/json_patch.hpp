#pragma once
// JSON Patch (RFC 6902) from one document to another: what an admission
// webhook answers. Objects are compared key by key; an array is patched in
// place when the two differ by one run of elements added or removed (an
// element put first, a volume appended), and replaced whole otherwise.
#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace vane {

// The operations (add, remove, replace) that turn `from` into `to`; empty when they are equal.
boost::json::array json_patch_diff(const boost::json::value& from, const boost::json::value& to);

// A JSON Pointer (RFC 6901) reference token: "~" as "~0", "/" as "~1".
std::string json_pointer_escape(std::string_view token);

}  // namespace vane
