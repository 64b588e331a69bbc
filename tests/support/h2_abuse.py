#!/usr/bin/python3
"""An abusive HTTP/2 client, frame by frame (Debian's python3-h2), for vane's tests.

usage: h2_abuse.py HOST PORT MODE

MODE: rapid-reset (open streams and reset each at once), empty-data (DATA
frames with no payload and no END_STREAM), window-updates (WINDOW_UPDATE
frames with nothing sent to call for them), ping-flood (PINGs never read
back), continuation (a header block in endless CONTINUATION frames),
bad-frame (a frame on stream 0 that must not be there), big-headers (a
header list past the server's limit); and one that is not abuse:
early-answers (600 requests one after the other, each a HEADERS frame
without END_STREAM, as an upload that has not ended, answered before it
ends by a route that replies at once); cancelled-uploads (80 uploads of
16 KiB, each reset by the client right after its DATA, in one write: the
server must give their bytes back to the connection's window, else the
client cannot send); slow-readers (8 downloads of 2 MB on streams whose
window is 1 byte, then a small one that must be answered 200: through an HTTP/2
cluster, the slow ones must not hold the upstream connection's window);
idle-after-answer (one request answered, then silence: the server must
close the connection after its idle timeout, "closed"); never-read (a
download on a stream whose window is 0, never opened: the server must
reset the stream, "reset"); data-after-answers (80 uploads answered before
they end, each followed by 16 KiB of DATA after its answer: the server must
give those bytes back to the connection's window, "answered 80").

Prints "closed" when the server answered with a GOAWAY or closed the
connection, "reset" when it reset the stream (big-headers); exits 1 when
neither happened within 30 s. early-answers prints "answered N" (the
responses that ended their streams) and exits 0, or "closed" and exits 1.
"""
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = socket.create_connection((host, port), timeout=10)
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
sock.sendall(conn.data_to_send())


def head(stream_id, end=True, extra=(), method="GET"):
    conn.send_headers(stream_id, [(":method", method), (":path", "/"), (":scheme", "http"),
                                  (":authority", "localhost")] + list(extra), end_stream=end)


def frame(kind, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + payload


def outcome():
    """Reads until a GOAWAY, a reset of stream 1 or the end; returns what it saw."""
    sock.settimeout(1)
    until = time.monotonic() + 30
    if mode == "ping-flood":  # thousands of PING ACKs are queued for us: read to the end, unparsed
        while time.monotonic() < until:
            try:
                if not sock.recv(1 << 20):
                    return "closed"
            except socket.timeout:
                continue
            except OSError:
                return "closed"
        return "nothing"

    def reset(e):
        return "reset" if isinstance(e, h2.events.StreamReset) and mode == "big-headers" else None

    return events_until(reset, ack=False) or "nothing"


def send_raw(data):
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def events_until(handle, seconds=30, answer=True, ack=None):
    """Reads for up to `seconds`, passing each event to handle(e), which returns a result to end
    with, or None. Returns that result, 'closed' (a GOAWAY, the connection's end) or None (time
    up). With `answer`, sends what the connection has to say after each read (ACKs, PING answers,
    what handle() queued); without it, nothing: a silent client. `ack` (as `answer` unless given):
    DATA received opens the windows again."""
    ack = answer if ack is None else ack
    sock.settimeout(1)
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return "closed"
        if not data:
            return "closed"
        try:
            events = conn.receive_data(data)
        except Exception:  # noqa: BLE001 (the server's answer may not parse as h2 expects)
            return "closed"
        for e in events:
            if isinstance(e, h2.events.ConnectionTerminated):
                return "closed"
            if ack and isinstance(e, h2.events.DataReceived):
                conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            seen = handle(e)
            if seen is not None:
                return seen
        if answer:
            send_raw(conn.data_to_send())
    return None


def ended(sid):
    return lambda e: "ended" if isinstance(e, h2.events.StreamEnded) and e.stream_id == sid else None


def early_answers(count):
    """Each stream's response ends it (the server then resets our unfinished upload): N such, or 'closed'."""
    for i in range(count):
        sid = 1 + 2 * i
        head(sid, end=False, extra=[("content-type", "application/octet-stream")])
        if not send_raw(conn.data_to_send()) or events_until(ended(sid), 10) != "ended":
            return "closed"
    return f"answered {count}"


def cancelled_uploads(count, size=16384):
    """Each upload's bytes are sent, then the stream reset: 'sent N', or 'stuck after I' when the
    connection's window did not open again within 10 s."""
    for i in range(count):
        sid = 1 + 2 * i
        if conn.outbound_flow_control_window < size:
            seen = events_until(lambda e: "open" if conn.outbound_flow_control_window >= size else None, 10)
            if seen != "open":
                return seen or f"stuck after {i} (window {conn.outbound_flow_control_window})"
        head(sid, end=False, extra=[("content-type", "application/octet-stream")], method="POST")
        conn.send_data(sid, b"x" * size)
        conn.reset_stream(sid, error_code=8)  # CANCEL
        if not send_raw(conn.data_to_send()):
            return "closed"
    return f"sent {count}"


def slow_readers(slow=8):
    """Downloads never read past their first byte, then one that is: 'fast answered STATUS' or 'fast stuck'."""
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1})  # one byte each, then nothing
    for i in range(slow):
        conn.send_headers(1 + 2 * i, [(":method", "GET"), (":path", "/bytes/2000000"), (":scheme", "http"),
                                      (":authority", "localhost")], end_stream=True)
    send_raw(conn.data_to_send())
    fast, begun, status = 1 + 2 * slow, set(), {}

    def handle(e):
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == fast:
            status["fast"] = dict(e.headers).get(":status")
        if isinstance(e, h2.events.DataReceived) and e.stream_id != fast and e.stream_id not in begun:
            begun.add(e.stream_id)  # its first byte: the upstream's answer is flowing through
            if len(begun) == slow:  # every slow download has begun: now the fast one
                conn.send_headers(fast, [(":method", "GET"), (":path", "/bytes/100"), (":scheme", "http"),
                                         (":authority", "localhost")], end_stream=True)
                conn.increment_flow_control_window(1 << 20, stream_id=fast)
        if isinstance(e, h2.events.StreamEnded) and e.stream_id == fast:
            return f"fast answered {status.get('fast')}"
        return None

    return events_until(handle, ack=False) or "fast stuck"


def wait_for(stream_id, want, answer=True):
    """'ended' (the stream's end), 'reset' (RST_STREAM on it) or 'closed' (GOAWAY, the end of the
    connection) within 30 s, the first of those in `want`; else 'nothing'."""
    def handle(e):
        if isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id and "ended" in want:
            return "ended"
        if isinstance(e, h2.events.StreamReset) and e.stream_id == stream_id and "reset" in want:
            return "reset"
        return None

    seen = events_until(handle, answer=answer)
    return seen if seen in want else "nothing"


def data_after_answers(count, size=16384):
    """Each stream answered before its upload ends, then DATA on it (raw: the client's h2 state
    thinks it closed): 'answered N', or 'closed' when the server ended the connection."""
    for i in range(count):
        sid = 1 + 2 * i
        head(sid, end=False, extra=[("content-type", "application/octet-stream")], method="POST")
        if not send_raw(conn.data_to_send()) or events_until(ended(sid), 10) != "ended":
            return "closed"
        if not send_raw(frame(0, 0, sid, b"x" * size)):  # DATA, no END_STREAM
            return "closed"
    # A PING answered: the connection still works after all that DATA.
    conn.ping(b"12345678")
    send_raw(conn.data_to_send())
    seen = events_until(lambda e: "pong" if isinstance(e, h2.events.PingAckReceived) else None, 10)
    return f"answered {count}" if seen == "pong" else (seen or "no ping answer")


if mode == "data-after-answers":
    seen = data_after_answers(80)
    print(seen)
    sys.exit(0 if seen == "answered 80" else 1)
elif mode == "idle-after-answer":
    head(1)
    send_raw(conn.data_to_send())
    seen = wait_for(1, ("ended",), answer=False)  # (the server's SETTINGS unacknowledged: it does not wait on it)
    if seen == "ended":
        seen = wait_for(1, ("closed",), answer=False)
    print(seen)
    sys.exit(0 if seen == "closed" else 1)
elif mode == "never-read":
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn.send_headers(1, [(":method", "GET"), (":path", "/bytes/50000"), (":scheme", "http"),
                          (":authority", "localhost")], end_stream=True)
    send_raw(conn.data_to_send())
    seen = wait_for(1, ("reset", "closed"))
    print(seen)
    sys.exit(0 if seen == "reset" else 1)
elif mode == "slow-readers":
    seen = slow_readers()
    print(seen)
    sys.exit(0 if seen == "fast answered 200" else 1)
elif mode == "cancelled-uploads":
    seen = cancelled_uploads(80)
    print(seen)
    sys.exit(0 if seen.startswith("sent") else 1)
elif mode == "early-answers":
    seen = early_answers(600)
    print(seen)
    sys.exit(0 if seen.startswith("answered") else 1)
elif mode == "rapid-reset":
    for i in range(700):
        sid = 1 + 2 * i
        head(sid)
        conn.reset_stream(sid, error_code=8)  # CANCEL
        if not send_raw(conn.data_to_send()):
            break
elif mode == "empty-data":
    head(1, end=False)
    send_raw(conn.data_to_send())
    send_raw(b"".join(frame(0, 0, 1) for _ in range(50)))
elif mode == "window-updates":
    send_raw(b"".join(frame(8, 0, 0, struct.pack(">I", 1)) for _ in range(500)))
elif mode == "ping-flood":
    # PINGs whose ACKs are never read: once the socket's buffers are full, they pile up in the server.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    batch = b"".join(frame(6, 0, 0, b"12345678") for _ in range(1000))
    for _ in range(2000):
        if not send_raw(batch):
            break
elif mode == "continuation":
    # HEADERS without END_HEADERS, then CONTINUATION frames that never end the block.
    send_raw(frame(1, 0, 1, b"\x82"))  # :method GET (indexed)
    for _ in range(100):
        if not send_raw(frame(9, 0, 1, b"\x84")):  # :path / (indexed), again and again
            break
elif mode == "bad-frame":
    send_raw(frame(0, 0, 0, b"data on stream 0"))
elif mode == "big-headers":
    head(1, extra=[("x-big", "a" * 70000)])
    send_raw(conn.data_to_send())
else:
    sys.exit(f"unknown mode {mode}")

seen = outcome()
print(seen)
sys.exit(0 if seen in ("closed", "reset") else 1)
