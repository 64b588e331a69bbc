#include "tests/support/grpc.hpp"

#include <boost/json.hpp>

#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"

namespace vane::test {

namespace json = boost::json;

namespace {

const char* python = "/usr/bin/python3";

std::uint64_t count_in(const json::object& o, const std::string& key) {
  const auto* v = o.if_contains(key);
  return v && v->is_int64() ? static_cast<std::uint64_t>(v->as_int64()) : 0;
}

const json::object& member(const json::object& o, const std::string& key) {
  static const json::object none;
  const auto* v = o.if_contains(key);
  return v && v->is_object() ? v->as_object() : none;
}

}  // namespace

std::uint64_t grpc_result::calls() const { return count_in(report, "calls"); }
std::uint64_t grpc_result::status(const std::string& name) const { return count_in(member(report, "status"), name); }
std::uint64_t grpc_result::version(const std::string& v) const { return count_in(member(report, "versions"), v); }
std::uint64_t grpc_result::version_status(const std::string& v, const std::string& name) const {
  return count_in(member(member(report, "by_version"), v), name);
}
std::uint64_t grpc_result::messages() const { return count_in(report, "messages"); }
std::string grpc_result::details(const std::string& name) const {
  const auto* v = member(report, "details").if_contains(name);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

grpc_result grpc_calls(const std::string& target, const std::vector<std::string>& args) {
  std::vector<std::string> argv{source_dir() + "/tests/support/grpc_client.py", "--target", target};
  argv.insert(argv.end(), args.begin(), args.end());
  grpc_result r;
  std::tie(r.exit_code, r.output) = run(python, argv);
  // The report is the last line that is a JSON object (grpcio may log to stderr before it).
  for (std::size_t end = r.output.size(); end > 0;) {
    const std::size_t start = r.output.rfind('\n', end - 1);
    const std::size_t from = start == std::string::npos ? 0 : start + 1;
    const std::string line = r.output.substr(from, end - from);
    if (line.starts_with("{")) {
      boost::system::error_code ec;
      auto v = json::parse(line, ec);
      if (!ec && v.is_object()) r.report = v.as_object();
      break;
    }
    if (start == std::string::npos) break;
    end = start;
  }
  return r;
}

bool grpcio_available() { return run(python, {"-c", "import grpc"}).first == 0; }

}  // namespace vane::test
