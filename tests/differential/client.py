"""The client side of one case: a fresh connection to a proxy, the case's bytes
sent (piece by piece), and the responses read back and parsed in sequence with
their own framing (Content-Length, chunked, or until close).

Reading stops at the first of: the connection closed (FIN or reset); as many
final responses as the case sends requests, followed by `grace` seconds of
silence (or by the close such a response announced); `idle` seconds without a
byte; `overall` seconds in all. Sending reads at the same time, so a proxy
that answers and closes while a large request is still going out is heard.
"""

import select
import socket
import time

from corpus import AWAIT_100

RECORDER_BODY = b"ok"  # the recording upstream's body (recorder.OK_RESPONSE_BODY)


class Timing:
    def __init__(self, idle=1.5, grace=0.25, overall=8.0, pause=0.1, await_100=1.0, settle=1.5):
        self.idle = idle            # no byte for this long: the proxy is waiting for more (or stuck)
        self.grace = grace          # after the expected responses: a close, or anything more, within this
        self.overall = overall      # one exchange, at most
        self.pause = pause          # between pieces
        self.await_100 = await_100  # between pieces of an Expect: 100-continue case, at most
        self.settle = settle        # for the upstream to finish what it was sent


class Response:
    def __init__(self, status, version=b"", headers=(), raw=b""):
        self.status = status      # int, or "raw" for bytes that are not an HTTP/1.x response
        self.version = version
        self.headers = list(headers)
        self.raw = raw            # the head (or the raw bytes)

    def field(self, name):
        return b",".join(v for n, v in self.headers if n == name).lower()

    @property
    def from_upstream(self):
        if self.status == "raw":  # an HTTP/0.9-style answer: the recorder's body alone
            return self.raw == RECORDER_BODY
        return self.field(b"x-upstream") == b"recorder"

    @property
    def announces_close(self):
        conn = self.field(b"connection")
        return b"close" in conn or (self.version == b"HTTP/1.0" and b"keep-alive" not in conn)

    @property
    def interim(self):
        return isinstance(self.status, int) and 100 <= self.status < 200 and self.status != 101


def _chunked_end(buf, pos):
    """The offset just past a chunked body starting at pos, or None if incomplete/invalid."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(buf[pos:eol].split(b";")[0].strip(), 16)
        except ValueError:
            return None
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)  # trailers, then an empty line
            return None if end < 0 else end + 4
        pos += size + 2
        if pos > len(buf):
            return None


def parse_responses(buf, eof, head_responses=0):
    """Every complete response in buf, in order (interim ones included)."""
    out, pos, finals = [], 0, 0
    while pos < len(buf):
        if not buf.startswith(b"HTTP/", pos):
            if len(buf) - pos < 5 and not eof and b"HTTP/".startswith(bytes(buf[pos:])):
                break
            out.append(Response("raw", raw=bytes(buf[pos:])))  # an HTTP/0.9 answer or garbage
            break
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        head = bytes(buf[pos:end])
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            out.append(Response("raw", raw=bytes(buf[pos:])))
            break
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        r = Response(status, parts[0], headers, head)
        body_start = end + 4
        if r.interim:
            out.append(r)
            pos = body_start
            continue
        if status == 101:  # what follows is another protocol
            out.append(r)
            break
        if finals < head_responses or status in (204, 304):
            body_end = body_start
        elif b"chunked" in r.field(b"transfer-encoding"):
            body_end = _chunked_end(buf, body_start)
        elif r.field(b"content-length"):
            body_end = body_start + int(r.field(b"content-length").split(b",")[0])
            if body_end > len(buf):
                body_end = None
        else:
            body_end = len(buf) if eof else None  # delimited by the close
        if body_end is None:
            break
        out.append(r)
        finals += 1
        pos = body_end
    return out


class Exchange:
    """One client connection: send the case, read what comes back."""

    def __init__(self, port, case, timing):
        self.case = case
        self.timing = timing
        self.rx = bytearray()
        self.close = None        # None (open), "fin", "reset" or "connect-failed"
        self.send_error = None
        self.timed_out = False   # idle or overall deadline hit before the expected responses
        self.deadline = time.monotonic() + timing.overall
        try:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=2.0)
        except OSError:
            self.sock, self.close = None, "connect-failed"  # the proxy is gone (a crash is recorded)
            return
        self.sock.setblocking(False)

    # --- primitives -------------------------------------------------------
    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            self.close = "reset"
            return False
        if not data:
            self.close = "fin"
            return False
        self.rx += data
        return True

    def _wait_readable(self, timeout):
        """Reads once if bytes (or a close) come within timeout; False if nothing came."""
        timeout = max(0.0, min(timeout, self.deadline - time.monotonic()))
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return False
        self._recv()
        return True

    def _send_all(self, data):
        view = memoryview(data)
        while view and self.close is None and time.monotonic() < self.deadline:
            readable, writable, _ = select.select([self.sock], [self.sock], [], self.deadline - time.monotonic())
            if readable and not self._recv():
                break
            if writable:
                try:
                    view = view[self.sock.send(view[:65536]):]
                except OSError as e:
                    self.send_error = type(e).__name__
                    return

    def responses(self):
        return parse_responses(self.rx, self.close is not None, self.case.head_responses)

    def finals(self):
        return [r for r in self.responses() if not r.interim]

    # --- the exchange -----------------------------------------------------
    def run(self):
        if self.sock is None:
            return self
        pieces = self.case.pieces
        for i, piece in enumerate(pieces):
            self._send_all(piece)
            if self.close is not None or self.send_error:
                break
            if i + 1 < len(pieces):
                self._between_pieces()
        self.read(self.case.sent)
        return self

    def _between_pieces(self):
        if self.case.between == AWAIT_100:
            end = time.monotonic() + self.timing.await_100
            while time.monotonic() < end and self.close is None:
                if any(r.status == 100 for r in self.responses()) or self.finals():
                    return
                self._wait_readable(end - time.monotonic())
        else:
            end = time.monotonic() + self.timing.pause
            while time.monotonic() < end and self.close is None:
                self._wait_readable(end - time.monotonic())

    def read(self, expected):
        """Reads until `expected` final responses (then a grace period), a close, or a deadline."""
        while self.close is None and time.monotonic() < self.deadline:
            finals = self.finals()
            done = len(finals) >= expected or (finals and finals[-1].status in (101, "raw"))
            if done and not finals[-1].announces_close:
                wait = self.timing.grace
            else:
                wait = self.timing.idle
            if not self._wait_readable(wait):
                self.timed_out = not done
                return
        if self.close is None:
            self.timed_out = True

    def shutdown(self):
        if self.sock is not None:
            self.sock.close()
