#!/usr/bin/python3
"""A gRPC client for vane's tests, demos and benches: calls vane-demo's service
(demo/demo.proto), directly or through vane-proxy, and prints one JSON line of
what came back.

It uses Debian's python3-grpcio with generic calls and messages encoded by hand,
so no protoc and no generated code are needed.

    grpc_client.py --target HOST:PORT [--method echo|count|health|watch|/pkg.Service/Method]
                   [--calls N] [--duration S] [--rate R] [--concurrency C]
                   [--message M] [--count N] [--service S] [--deadline S]
                   [--metadata NAME=VALUE]... [--authority A] [--compression gzip]
                   [--wait-ready S]

Methods: echo (vane.demo.v1.Demo/Echo with --message), count
(vane.demo.v1.Demo/Count: a stream of --count replies), health
(grpc.health.v1.Health/Check for --service), watch (grpc.health.v1.Health/Watch:
the first reply, then the call is cancelled), or a full method path, which gets
an EchoRequest (to check UNIMPLEMENTED).

The output, one line (keys always present; maps may be empty):
  {"target": ..., "method": "echo", "calls": 100,          calls made
   "status": {"OK": 50, "INTERNAL": 50},                   calls by final status
   "versions": {"v1": 100},                                calls by x-version (response headers or
                                                           Trailers-Only trailers; "" when none)
   "by_version": {"v1": {"OK": 50, "INTERNAL": 50}},       status by x-version
   "reply_versions": {"v1": 50},                           messages by EchoReply.version
   "messages": 50,                                         reply messages received
   "mismatched": 0,                                        echo: replies whose message differs;
                                                           count: OK streams without exactly --count replies
   "health": {"SERVING": 1},                               health/watch: replies by serving status
   "details": {"INTERNAL": "injected failure"},            the first grpc-message per status
   "elapsed_s": 0.12}
Exit status: 0 when the calls were made (whatever their status), 1 when the
channel was not ready within --wait-ready (the line has "error"), 2 on bad usage.
"""

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

ECHO = "/vane.demo.v1.Demo/Echo"
COUNT = "/vane.demo.v1.Demo/Count"
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


# ---- protobuf, by hand (varints and length-delimited fields) ----

def varint(n):
    n &= (1 << 64) - 1  # negative int32/int64: two's complement, 10 bytes
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string_field(number, text):
    data = text.encode() if isinstance(text, str) else text
    return varint(number << 3 | 2) + varint(len(data)) + data


def varint_field(number, n):
    return varint(number << 3) + varint(n)


def parse(message):
    """{field number: last value} of a message: ints for varints, bytes for length-delimited."""
    fields, at = {}, 0

    def read_varint():
        nonlocal at
        n, shift = 0, 0
        while True:
            if at >= len(message) or shift > 63:
                raise ValueError("truncated varint")
            b = message[at]
            at += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while at < len(message):
        key = read_varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number] = read_varint()
        elif wire == 2:
            length = read_varint()
            if at + length > len(message):
                raise ValueError("truncated field")
            fields[number] = bytes(message[at:at + length])
            at += length
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
    return fields


# ---- the calls ----

class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = 0
        self.status = {}
        self.versions = {}
        self.by_version = {}
        self.reply_versions = {}
        self.messages = 0
        self.mismatched = 0
        self.health = {}
        self.details = {}

    def add(self, code, details, version, replies, mismatched, health):
        name = code.name
        with self.lock:
            self.calls += 1
            self.status[name] = self.status.get(name, 0) + 1
            self.versions[version] = self.versions.get(version, 0) + 1
            per = self.by_version.setdefault(version, {})
            per[name] = per.get(name, 0) + 1
            if details and name not in self.details:
                self.details[name] = details
            self.messages += len(replies)
            self.mismatched += mismatched
            for v in replies:
                if v is not None:
                    self.reply_versions[v] = self.reply_versions.get(v, 0) + 1
            for h in health:
                self.health[h] = self.health.get(h, 0) + 1


def version_of(call):
    """x-version from the response headers, or from the trailers of a Trailers-Only response."""
    for get in ("initial_metadata", "trailing_metadata"):
        try:
            md = getattr(call, get)() or ()
        except Exception:  # noqa: BLE001 - a call that never got an answer has none
            md = ()
        for key, value in md:
            if key == "x-version":
                return value
    return ""


def parse_or_none(message):
    """parse(), or None for a reply that is not a valid message (counted as mismatched)."""
    try:
        return parse(message)
    except ValueError:
        return None


def reply_version(message):
    fields = parse_or_none(message) or {}
    v = fields.get(2)
    return v.decode(errors="replace") if isinstance(v, bytes) else None


def one_call(channel, args, metadata, results):
    timeout = args.deadline
    if args.method == "count":
        request = varint_field(1, args.count)
        call = channel.unary_stream(COUNT, request_serializer=None, response_deserializer=None)(
            request, timeout=timeout, metadata=metadata)
        replies, malformed = [], 0
        try:
            for message in call:
                replies.append(reply_version(message))
                malformed += parse_or_none(message) is None
        except grpc.RpcError:
            pass
        code = call.code()
        mismatched = malformed or (1 if code == grpc.StatusCode.OK and len(replies) != args.count else 0)
        results.add(code, call.details(), version_of(call), replies, mismatched, [])
        return
    if args.method == "watch":
        request = string_field(1, args.service)
        call = channel.unary_stream(WATCH, request_serializer=None, response_deserializer=None)(
            request, timeout=timeout, metadata=metadata)
        health = []
        try:
            for message in call:
                health.append(SERVING_STATUS.get((parse_or_none(message) or {}).get(1, 0), "UNKNOWN"))
                call.cancel()
                break
        except grpc.RpcError:
            pass
        results.add(call.code(), call.details(), version_of(call), [None] * len(health), 0, health)
        return
    if args.method == "health":
        path, request = CHECK, string_field(1, args.service)
    else:
        path = ECHO if args.method == "echo" else args.method
        request = string_field(1, args.message) if args.message else b""
    unary = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    try:
        response, call = unary.with_call(request, timeout=timeout, metadata=metadata)
    except grpc.RpcError as e:
        results.add(e.code(), e.details(), version_of(e), [], 0, [])
        return
    fields = parse_or_none(response)
    if args.method == "health":
        status = SERVING_STATUS.get((fields or {}).get(1, 0), "UNKNOWN")
        results.add(call.code(), call.details(), version_of(call), [None], int(fields is None), [status])
        return
    echoed = (fields or {}).get(1, b"")
    version = (fields or {}).get(2)
    replies = [version.decode(errors="replace") if isinstance(version, bytes) else None]
    text = echoed.decode(errors="replace") if isinstance(echoed, bytes) else None
    results.add(call.code(), call.details(), version_of(call), replies, int(text != args.message), [])


def main():
    p = argparse.ArgumentParser(description="gRPC calls to vane-demo; one JSON line of results")
    p.add_argument("--target", required=True, help="HOST:PORT (vane-demo, or vane-proxy in front of it)")
    p.add_argument("--method", default="echo", help="echo, count, health, watch, or /pkg.Service/Method")
    p.add_argument("--calls", type=int, default=1, help="calls to make (with --duration: at most; 0: no limit)")
    p.add_argument("--duration", type=float, default=0, help="keep calling for this many seconds")
    p.add_argument("--rate", type=float, default=0, help="calls per second in all (0: as fast as answered)")
    p.add_argument("--concurrency", type=int, default=1, help="calls in flight at once")
    p.add_argument("--message", default="hello", help="Echo's message")
    p.add_argument("--count", type=int, default=3, help="Count's number of replies")
    p.add_argument("--service", default="", help="the service asked about by health and watch")
    p.add_argument("--deadline", type=float, default=10, help="each call's deadline, seconds")
    p.add_argument("--metadata", action="append", default=[], metavar="NAME=VALUE", help="request metadata")
    p.add_argument("--authority", help=":authority (default: the target)")
    p.add_argument("--compression", choices=["gzip"], help="compress request messages")
    p.add_argument("--wait-ready", type=float, default=10, help="seconds to wait for the channel to connect")
    args = p.parse_args()
    if args.method not in ("echo", "count", "health", "watch") and not args.method.startswith("/"):
        p.error("--method must be echo, count, health, watch or a path /pkg.Service/Method")
    if args.calls < 0 or args.concurrency < 1 or (args.calls == 0 and args.duration <= 0):
        p.error("--calls must be >= 1 (or 0 with --duration), --concurrency >= 1")
    metadata = []
    for m in args.metadata:
        name, sep, value = m.partition("=")
        if not sep or not name:
            p.error("--metadata needs NAME=VALUE")
        metadata.append((name.lower(), value))

    options = [("grpc.enable_retries", 0)]  # every call once: what the server said, not a retry's answer
    if args.authority:
        options.append(("grpc.default_authority", args.authority))
    compression = grpc.Compression.Gzip if args.compression == "gzip" else None
    channel = grpc.insecure_channel(args.target, options=options, compression=compression)
    out = {"target": args.target, "method": args.method}
    try:
        grpc.channel_ready_future(channel).result(timeout=args.wait_ready)
    except grpc.FutureTimeoutError:
        out["error"] = "channel not ready within %gs" % args.wait_ready
        print(json.dumps(out), flush=True)
        return 1

    results = Results()
    start = time.monotonic()
    end = start + args.duration if args.duration > 0 else None
    next_index = [0]
    index_lock = threading.Lock()

    def worker():
        while True:
            with index_lock:
                i = next_index[0]
                if args.calls and i >= args.calls:
                    return
                next_index[0] += 1
            if args.rate > 0:
                delay = start + i / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if end is not None and time.monotonic() >= end:
                return
            one_call(channel, args, metadata, results)

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(args.concurrency)]:
            f.result()
    elapsed = time.monotonic() - start
    channel.close()
    out.update({
        "calls": results.calls,
        "status": results.status,
        "versions": results.versions,
        "by_version": results.by_version,
        "reply_versions": results.reply_versions,
        "messages": results.messages,
        "mismatched": results.mismatched,
        "health": results.health,
        "details": results.details,
        "elapsed_s": round(elapsed, 3),
    })
    print(json.dumps(out, sort_keys=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
