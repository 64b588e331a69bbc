"""The recording upstream of the differential harness.

A raw-socket HTTP/1.1 server on 127.0.0.1 (port chosen by the OS) with one
thread per connection. It parses every request it receives strictly enough to
count them -- the head, then a body framed by Transfer-Encoding: chunked or
Content-Length (RFC 9112 section 6) -- records each one, and answers it with a
small fixed response:

    HTTP/1.1 200 OK / X-Upstream: recorder / Content-Length: 2 / "ok"

The X-Upstream field lets the client tell the upstream's answers from the
proxy's own. A request the upstream cannot parse is recorded with its error
and answered 400 (also marked X-Upstream), then the connection is closed.
It accepts what RFC 9112 lets a recipient accept (bare LF as a line end,
obs-fold unfolded); that is the receiver a lenient proxy would put at risk.

Recordings are bucketed per case: begin() opens a bucket; settle() waits until
everything the proxy has sent is parsed -- no connection waiting to be
accepted, no unread bytes on any socket, no request half-received -- or a
deadline passes (then the connections still mid-request are closed, and what
they held is recorded as incomplete), and returns the bucket. Accepts and
reads happen under the same lock as that check, so nothing a proxy sent for
one case can be counted in the next.
"""

import re
import select
import socket
import threading
import time

OK_RESPONSE_HEAD = b"HTTP/1.1 200 OK\r\nX-Upstream: recorder\r\nContent-Length: 2\r\n\r\n"
OK_RESPONSE_BODY = b"ok"
BAD_RESPONSE = (b"HTTP/1.1 400 Bad Request\r\nX-Upstream: recorder\r\nContent-Length: 3\r\n"
                b"Connection: close\r\n\r\nbad")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

MAX_HEAD = 1024 * 1024  # bigger than any proxy lets through
READ_SLICE = 0.05        # how often a blocked reader looks at its stop flag
SETTLE_POLL = 0.005      # how often settle() looks at the kernel's socket queues
HEAD_END = re.compile(rb"\r?\n\r?\n")
TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class ParseError(Exception):
    pass


class _Closed(Exception):
    """The peer closed, or the harness aborted the connection."""


class UpstreamRequest:
    """One request as the upstream parsed it (or tried to)."""

    def __init__(self, conn_id):
        self.conn_id = conn_id
        self.method = self.target = self.version = None
        self.headers = []        # [(name bytes, value bytes)] in order, unfolded
        self.obs_fold = False
        self.framing = "none"    # none | content-length | chunked
        self.body = bytearray()
        self.trailers = []
        self.complete = False    # head and whole body received
        self.error = None        # why the upstream refused it
        self.raw_head = b""

    def header(self, name):
        """Every value of the field `name` (lower-case bytes)."""
        return [v for n, v in self.headers if n.lower() == name]


class Recording:
    """What the upstream saw during one case."""

    def __init__(self, label):
        self.label = label
        self.requests = []        # UpstreamRequest, in the order their heads arrived
        self.raw = {}             # conn id -> bytearray received during this case
        self.answered = 0         # responses written (200 or 400)
        self.aborted = 0          # connections closed by the harness at the deadline


class _Conn:
    def __init__(self, upstream, sock, conn_id):
        self.upstream = upstream
        self.sock = sock
        self.id = conn_id
        self.buf = bytearray()
        self.mid_request = False
        self.abort = False

    # --- reading ----------------------------------------------------------
    def _fill(self):
        """Reads more bytes into buf; raises _Closed at EOF, error or abort.
        The recv happens under the upstream's lock, so settle() never sees
        bytes that have left the socket without being in buf."""
        up = self.upstream
        while True:
            if self.abort or up.stopping:
                raise _Closed()
            readable, _, _ = select.select([self.sock], [], [], READ_SLICE)
            if not readable:
                continue
            with up.cond:
                try:
                    data = self.sock.recv(65536)
                except (BlockingIOError, socket.timeout):
                    continue
                except OSError:
                    raise _Closed()
                if not data:
                    raise _Closed()
                self.buf += data
                up.current.raw.setdefault(self.id, bytearray()).extend(data)
                up.cond.notify_all()
            return

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _line(self, limit=65536):
        """A line ending in LF (a CR before it is dropped); a bare CR is an error."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if b"\r" in line:
                    raise ParseError("bare CR")
                return line
            if len(self.buf) > limit:
                raise ParseError("line too long")
            self._fill()

    # --- parsing ----------------------------------------------------------
    def _read_head(self):
        while True:
            m = HEAD_END.search(self.buf)
            # Empty lines before a request line are ignored (RFC 9112 section 2.2).
            while self.buf[:2] == b"\r\n" or self.buf[:1] == b"\n":
                del self.buf[:2 if self.buf[:1] == b"\r" else 1]
                m = HEAD_END.search(self.buf)
            if m and m.start() > 0:
                head = bytes(self.buf[:m.end()])
                del self.buf[:m.end()]
                return head
            if len(self.buf) > MAX_HEAD:
                raise ParseError("head too large")
            self._fill()

    def _parse_head(self, req, head):
        req.raw_head = head
        lines = re.split(rb"\r?\n", head[:HEAD_END.search(head).start()])
        for line in lines:
            if b"\r" in line:
                raise ParseError("bare CR in head")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not TOKEN.match(parts[0]) or not parts[1]:
            raise ParseError("bad request line")
        req.method, req.target, req.version = parts
        if not re.match(rb"^HTTP/1\.[01]$", req.version):
            raise ParseError("bad version")
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):
                if not req.headers:
                    raise ParseError("fold before any field")
                name, value = req.headers[-1]
                req.headers[-1] = (name, value + b" " + line.strip(b" \t"))
                req.obs_fold = True
                continue
            name, colon, value = line.partition(b":")
            if not colon or not TOKEN.match(name):
                raise ParseError("bad field line")
            value = value.strip(b" \t")
            if re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value):
                raise ParseError("control character in a value")
            req.headers.append((name, value))

    def _framing(self, req):
        te = req.header(b"transfer-encoding")
        cl = req.header(b"content-length")
        if te:
            # Empty list elements are ignored (RFC 9110 section 5.6.1).
            codings = [c.strip(b" \t").lower() for c in b",".join(te).split(b",") if c.strip(b" \t")]
            if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
                raise ParseError("Transfer-Encoding without a final chunked")
            return "chunked", None
        if cl:
            values = {c.strip(b" \t") for c in b",".join(cl).split(b",") if c.strip(b" \t")}
            if len(values) != 1 or not re.match(rb"^[0-9]{1,15}$", next(iter(values))):
                raise ParseError("bad Content-Length")
            return "content-length", int(next(iter(values)))
        return "none", 0

    def _read_chunked(self, req):
        while True:
            line = self._line()
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not re.match(rb"^[0-9A-Fa-f]{1,15}$", size_text):
                raise ParseError("bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            req.body += self._take(size)
            if self._line() != b"":
                raise ParseError("chunk data not followed by CRLF")
        while True:  # trailer section
            line = self._line()
            if line == b"":
                return
            name, colon, value = line.partition(b":")
            if not colon or not TOKEN.match(name):
                raise ParseError("bad trailer line")
            req.trailers.append((name, value.strip(b" \t")))

    def _write(self, data):
        self.sock.sendall(data)

    def serve(self):
        up = self.upstream
        try:
            while True:
                req = None
                try:
                    head = self._read_head()
                    with up.cond:
                        self.mid_request = True
                        req = UpstreamRequest(self.id)
                        up.current.requests.append(req)
                    self._parse_head(req, head)
                    req.framing, length = self._framing(req)
                    expect = [v.lower() for v in req.header(b"expect")]
                    if b"100-continue" in expect and req.version == b"HTTP/1.1" and req.framing != "none":
                        self._write(CONTINUE)
                    if req.framing == "chunked":
                        self._read_chunked(req)
                    else:
                        req.body += self._take(length)
                    req.complete = True
                    self._write(OK_RESPONSE_HEAD if req.method == b"HEAD" else OK_RESPONSE_HEAD + OK_RESPONSE_BODY)
                except ParseError as e:
                    with up.cond:
                        if req is None:  # the head itself was too large
                            req = UpstreamRequest(self.id)
                            up.current.requests.append(req)
                        req.error = str(e)
                    self._write(BAD_RESPONSE)
                    with up.cond:
                        up.current.answered += 1
                    return
                with up.cond:
                    up.current.answered += 1
                    self.mid_request = False
                    up.cond.notify_all()
                connection = b",".join(req.header(b"connection")).lower()
                if b"close" in connection or (req.version == b"HTTP/1.0" and b"keep-alive" not in connection):
                    return
        except (_Closed, OSError):
            # Bytes that never became a whole head are recorded as an incomplete request.
            with up.cond:
                if self.buf.strip(b"\r\n") and not self.mid_request:
                    req = UpstreamRequest(self.id)
                    req.error = "incomplete head"
                    req.raw_head = bytes(self.buf)
                    up.current.requests.append(req)
        finally:
            with up.cond:
                self.buf.clear()
                self.mid_request = False
                up.conns.discard(self)
                up.cond.notify_all()
            try:
                self.sock.close()
            except OSError:
                pass

    def busy(self):
        return self.mid_request or bool(self.buf)


class RecordingUpstream:
    def __init__(self, name):
        self.name = name
        self.cond = threading.Condition()
        self.conns = set()
        self.current = Recording("(start)")
        self.stopping = False
        self._next_id = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"upstream-{name}", daemon=True)
        self._acceptor.start()

    def _accept_loop(self):
        while not self.stopping:
            try:
                readable, _, _ = select.select([self.listener], [], [], READ_SLICE * 4)
            except (OSError, ValueError):  # closed by close()
                return
            if not readable:
                continue
            with self.cond:  # accepted and registered at once: settle() sees one or the other
                try:
                    sock, _ = self.listener.accept()
                except BlockingIOError:
                    continue
                except OSError:
                    return
                sock.settimeout(2.0)  # writes; reads wait in select() first
                self._next_id += 1
                conn = _Conn(self, sock, self._next_id)
                self.conns.add(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    def begin(self, label):
        with self.cond:
            self.current = Recording(label)

    def answered(self):
        with self.cond:
            return self.current.answered

    def _unsettled(self):
        """Under the lock: is anything a proxy sent not yet parsed? A connection
        waiting in the accept queue, bytes (or a close) unread on a socket, bytes
        read but not parsed, or a request whose body has not all come."""
        if any(c.busy() for c in self.conns):
            return True
        readable, _, _ = select.select([self.listener] + [c.sock for c in self.conns], [], [], 0)
        return bool(readable)

    def settle(self, deadline_s):
        """Waits (at most deadline_s) until everything the proxy sent so far is
        parsed and no request is half-received; closes the connections still
        mid-request; returns the case's Recording.

        On loopback, what a proxy wrote before the client saw its answer (or its
        close) is already in this side's socket queues, so this is exact for the
        case's own traffic; the kernel's queues are polled, as they notify nothing."""
        end = time.monotonic() + deadline_s
        with self.cond:
            while self._unsettled() and time.monotonic() < end:
                self.cond.wait(min(SETTLE_POLL, max(0.0, end - time.monotonic())))
            stuck = [c for c in self.conns if c.busy()]
            for c in stuck:
                c.abort = True
            self.current.aborted = len(stuck)
        for c in stuck:  # shutdown wakes its reader at once; it records and exits
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        end = time.monotonic() + 2.0
        with self.cond:
            while any(c in self.conns for c in stuck) and time.monotonic() < end:
                self.cond.wait(end - time.monotonic())
            return self.current

    def close(self):
        self.stopping = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.cond:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
