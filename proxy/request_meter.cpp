#include "proxy/request_meter.hpp"

namespace vane::proxy {

namespace {
std::uint64_t micros(std::chrono::steady_clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}
}  // namespace

request_meter::~request_meter() {
  if (!slot || !code) return;
  auto elapsed = clock::now() - start;
  slot->requests.get().add(code);
  slot->request_time.get().record(micros(elapsed));
  if (grpc_status >= 0) slot->grpc.get().add(static_cast<unsigned>(grpc_status));
  if (log) queue_line(elapsed);
}

void request_meter::queue_line(clock::duration elapsed) const {
  access_record* r = log->reserve();
  if (!r) return;
  auto started = std::chrono::system_clock::now() - elapsed;
  r->start_unix_us = std::chrono::duration_cast<std::chrono::microseconds>(started.time_since_epoch()).count();
  r->duration_us = micros(elapsed);
  r->bytes_received = bytes_received;
  r->bytes_sent = bytes_sent;
  r->status = static_cast<std::uint16_t>(code);
  r->version = static_cast<std::uint8_t>(version);
  r->has_upstream = upstream != nullptr;
  if (upstream) r->upstream = *upstream;
  r->method.assign(method);
  r->route.assign(route);
  r->cluster.assign(cluster);
  r->request_id.assign(request_id);
  r->path.assign(path);
  log->commit();
}

void count_attempt(route_cluster_stats& slot, unsigned code, std::chrono::steady_clock::time_point start) {
  slot.upstream.get().add(code);
  slot.upstream_time.get().record(micros(std::chrono::steady_clock::now() - start));
}

void count_mirror(route_cluster_stats& slot, unsigned code, std::chrono::steady_clock::time_point start) {
  slot.mirror.get().add(code);
  slot.mirror_time.get().record(micros(std::chrono::steady_clock::now() - start));
}

}  // namespace vane::proxy
