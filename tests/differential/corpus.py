"""The request corpus of the differential harness: hand-written cases and
generated families (Content-Length values, Transfer-Encoding values and field
names, chunk sizes and extensions, field-name characters, control bytes in
values, versions, methods, hop-by-hop names).

Every case has a unique name, a class (framing, header-syntax, request-line,
connection-mgmt), the raw bytes sent on one fresh client connection (in one
or several pieces), and `sent`: how many requests the client means to send
when the bytes are read as RFC 9112 reads them (a request hidden in a body is
not one). `short` marks the cases of the --short run.
"""

from dataclasses import dataclass

FRAMING, HEADERS, REQUEST_LINE, CONNECTION = "framing", "header-syntax", "request-line", "connection-mgmt"
CLASSES = (FRAMING, HEADERS, REQUEST_LINE, CONNECTION)

# How the harness moves from one piece to the next.
PAUSE = "pause"          # reads for a short while (the proxy sees the pieces apart)
AWAIT_100 = "await-100"  # reads until an interim 100 arrives (bounded), as a client with Expect does


@dataclass(frozen=True)
class Case:
    name: str
    klass: str
    pieces: tuple
    sent: int = 1
    between: str = PAUSE
    head_responses: int = 0  # the first N responses answer HEAD requests (no bodies)
    short: bool = False
    note: str = ""

    @property
    def data(self):
        return b"".join(self.pieces)


HOST = "Host: h.test"


def msg(*lines, body=b""):
    """A request from its lines (str, Latin-1 so any byte can be written) and body."""
    head = "".join(line + "\r\n" for line in lines) + "\r\n"
    return head.encode("latin-1") + (body.encode("latin-1") if isinstance(body, str) else body)


def get(*fields, line="GET / HTTP/1.1"):
    return msg(line, HOST, *fields)


def post(*fields, body="", line="POST / HTTP/1.1"):
    return msg(line, HOST, *fields, body=body)


CHUNKED_ABCD = "4\r\nabcd\r\n0\r\n\r\n"


_SLUG_NAMES = {" ": "sp", "\t": "tab", ",": "comma", "+": "plus", ";": "semi", "=": "eq",
               '"': "quote", ":": "colon", "@": "at", "[": "lbracket", "]": "rbracket", "(": "lparen",
               ")": "rparen", "<": "lt", ">": "gt", "\\": "backslash", "?": "question", "{": "lbrace",
               "}": "rbrace", "!": "bang", "#": "hash", "~": "tilde"}


def slug(text):
    """A readable case-name suffix for a string: odd characters spelled out."""
    out = []
    for ch in text:
        if ch.isascii() and (ch.isalnum() or ch in "-_./"):
            out.append(ch)
        else:
            out.append("(" + _SLUG_NAMES.get(ch, f"x{ord(ch):02x}") + ")")
    return "".join(out) or "(empty)"


def _hand_written():
    c = []

    def add(name, klass, data, **kw):
        pieces = data if isinstance(data, tuple) else (data,)
        c.append(Case(name, klass, pieces, **kw))

    # --- framing ---------------------------------------------------------
    add("cl-basic", FRAMING, post("Content-Length: 4", body="abcd"), short=True)
    add("cl-zero", FRAMING, post("Content-Length: 0"))
    add("get-with-cl-body", FRAMING, get("Content-Length: 4", line="GET / HTTP/1.1") + b"abcd")
    add("post-without-length", FRAMING, post())
    add("cl-duplicate-same", FRAMING, post("Content-Length: 4", "Content-Length: 4", body="abcd"))
    add("cl-duplicate-differ", FRAMING, post("Content-Length: 4", "Content-Length: 5", body="abcde"), short=True)
    add("cl-larger-than-body", FRAMING, post("Content-Length: 10", body="abcd"),
        note="body incomplete: the client stops sending")
    add("cl-obs-fold", FRAMING, post("Content-Length:", " 4", body="abcd"))
    add("cl-space-before-colon", FRAMING, post("Content-Length : 4", body="abcd"))
    add("cl-then-te", FRAMING, post("Content-Length: 4", "Transfer-Encoding: chunked", body="0\r\n\r\n"), short=True)
    add("te-then-cl", FRAMING, post("Transfer-Encoding: chunked", "Content-Length: 4", body="0\r\n\r\n"))
    add("cl-te-smuggle", FRAMING,
        post("Content-Length: 6", "Transfer-Encoding: chunked", body="0\r\n\r\nG"),
        note="CL.TE: by CL the body is '0\\r\\n\\r\\nG'; by TE a 'G' request follows")
    add("te-cl-smuggle", FRAMING,
        post("Transfer-Encoding: chunked", "Content-Length: 3",
             body="8\r\nSMUGGLED\r\n0\r\n\r\n"), short=True,
        note="TE.CL: by CL the body is '8\\r\\n' and 'SMUGGLED...' follows")
    add("cl-te-invalid-te", FRAMING, post("Content-Length: 4", "Transfer-Encoding: xchunked", body="abcd"))
    add("te-chunked-basic", FRAMING, post("Transfer-Encoding: chunked", body=CHUNKED_ABCD), short=True)
    add("te-chunked-several", FRAMING,
        post("Transfer-Encoding: chunked", body="1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n0\r\n\r\n"))
    add("te-chunked-empty-body", FRAMING, post("Transfer-Encoding: chunked", body="0\r\n\r\n"), short=True)
    add("te-http10", FRAMING,
        msg("POST / HTTP/1.0", HOST, "Transfer-Encoding: chunked", body=CHUNKED_ABCD), short=True)
    add("te-two-fields-chunked", FRAMING,
        post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked", body=CHUNKED_ABCD))
    add("te-two-fields-gzip-then-chunked", FRAMING,
        post("Transfer-Encoding: gzip", "Transfer-Encoding: chunked", body=CHUNKED_ABCD))
    add("te-gzip-hides-request", FRAMING,
        post("Transfer-Encoding: gzip", body="GET /smuggled HTTP/1.1\r\nHost: h.test\r\n\r\n"), short=True)
    add("body-holds-a-request-cl", FRAMING,
        post("Content-Length: 37", body="GET /inner HTTP/1.1\r\nHost: h.test\r\n\r\n"), short=True,
        note="a request as body bytes: one request upstream, with that body")
    add("body-holds-a-request-chunked", FRAMING,
        post("Transfer-Encoding: chunked", body="25\r\nGET /inner HTTP/1.1\r\nHost: h.test\r\n\r\n\r\n0\r\n\r\n"))
    add("get-with-chunked-body", FRAMING, get("Transfer-Encoding: chunked") + CHUNKED_ABCD.encode())
    # Chunk data and line ends.
    add("chunk-data-longer", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcdX\r\n0\r\n\r\n"))
    add("chunk-data-shorter", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabc\r\n0\r\n\r\n"))
    add("chunk-data-no-crlf", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcd0\r\n\r\n"))
    add("chunk-size-bare-lf", FRAMING, post("Transfer-Encoding: chunked", body="4\nabcd\r\n0\r\n\r\n"), short=True)
    add("chunk-data-bare-lf", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcd\n0\r\n\r\n"))
    add("chunk-size-bare-cr", FRAMING, post("Transfer-Encoding: chunked", body="4\rabcd\r\n0\r\n\r\n"))
    add("last-chunk-00", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n00\r\n\r\n"))
    add("last-chunk-extension", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0;x=y\r\n\r\n"))
    add("last-chunk-no-final-crlf", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0\r\n"),
        note="incomplete: the final CRLF never comes")
    add("chunk-size-hides-request", FRAMING,
        post("Transfer-Encoding: chunked",
             body="0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h.test\r\n\r\n"), sent=2, short=True,
        note="a zero chunk ends the body: a second, well-formed request follows")
    # Trailers.
    add("trailer-basic", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0\r\nX-T: v\r\n\r\n"))
    add("trailer-content-length", FRAMING,
        post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0\r\nContent-Length: 5\r\n\r\n"))
    add("trailer-transfer-encoding", FRAMING,
        post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"))
    add("trailer-host", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0\r\nHost: evil.test\r\n\r\n"))
    add("trailer-obs-fold", FRAMING,
        post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0\r\nX-T: a\r\n b\r\n\r\n"))
    add("trailer-no-colon", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0\r\nbad trailer\r\n\r\n"))
    add("trailer-nul", FRAMING, post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0\r\nX-T: a\x00b\r\n\r\n"))
    add("trailer-large", FRAMING,
        post("Transfer-Encoding: chunked", body="4\r\nabcd\r\n0\r\nX-T: " + "t" * 10000 + "\r\n\r\n"))

    # --- header syntax ---------------------------------------------------
    add("obs-fold-space", HEADERS, get("X-A: a", " b"), short=True)
    add("obs-fold-tab", HEADERS, get("X-A: a", "\tb"))
    add("obs-fold-host", HEADERS, msg("GET / HTTP/1.1", "Host:", " h.test"))
    add("obs-fold-first-line", HEADERS, msg("GET / HTTP/1.1", " X-A: a", HOST))
    add("obs-fold-empty-continuation", HEADERS, get("X-A: a", " "))
    add("space-before-colon", HEADERS, get("X-A : b"), short=True)
    add("tab-before-colon", HEADERS, get("X-A\t: b"))
    add("empty-name", HEADERS, get(": b"))
    add("line-without-colon", HEADERS, get("garbage"))
    add("colon-only", HEADERS, get(":"))
    add("bare-lf-everywhere", HEADERS, b"GET / HTTP/1.1\nHost: h.test\n\n", short=True)
    add("bare-lf-one-field", HEADERS, get("X-A: a\nX-B: b"))
    add("bare-cr-in-value", HEADERS, get("X-A: a\rb"), short=True)
    add("bare-cr-ends-field", HEADERS, get("X-A: a\rX-B: b"))
    add("cr-cr-lf", HEADERS, get("X-A: a\r"))
    add("head-ends-crlf-lf", HEADERS, b"GET / HTTP/1.1\r\nHost: h.test\r\n\n")
    add("head-ends-lf-crlf", HEADERS, b"GET / HTTP/1.1\r\nHost: h.test\n\r\n")
    add("value-leading-trailing-ows", HEADERS, get("X-A: \t a b \t"))
    add("value-empty", HEADERS, get("X-A:"))
    add("value-tab-inside", HEADERS, get("X-A: a\tb"))
    add("value-4k", HEADERS, get("X-A: " + "v" * 4096))
    add("value-12k", HEADERS, get("X-A: " + "v" * 12288))
    add("value-70k", HEADERS, get("X-A: " + "v" * 71680))
    add("name-10k", HEADERS, get("X-" + "n" * 10240 + ": v"))
    add("fields-90", HEADERS, get(*[f"X-F{i}: v" for i in range(90)]))
    add("fields-200", HEADERS, get(*[f"X-F{i}: v" for i in range(200)]))
    # Host.
    add("host-missing-http11", HEADERS, msg("GET / HTTP/1.1"), short=True)
    add("host-duplicate", HEADERS, msg("GET / HTTP/1.1", HOST, "Host: other.test"), short=True)
    add("host-duplicate-same", HEADERS, msg("GET / HTTP/1.1", HOST, "host: h.test"))
    add("host-empty", HEADERS, msg("GET / HTTP/1.1", "Host:"))
    for value in ("h.test/path", "h test", "u@h.test", "h.test:abc", "h.test:", "h.test:99999",
                  "[::1]:8080", "[::1", "h.test.", "H.TEST", "h_t.test", "h.test,other.test", "h.test:80:80"):
        add("host-" + slug(value), HEADERS, msg("GET / HTTP/1.1", "Host: " + value))

    # --- request lines ---------------------------------------------------
    for method in ("PUT", "DELETE", "PATCH", "TRACE", "PURGE"):
        add("method-" + method.lower(), REQUEST_LINE, msg(f"{method} / HTTP/1.1", HOST))
    add("method-head", REQUEST_LINE, msg("HEAD / HTTP/1.1", HOST), head_responses=1, short=True)
    add("method-options", REQUEST_LINE, msg("OPTIONS / HTTP/1.1", HOST))
    add("method-lowercase", REQUEST_LINE, msg("get / HTTP/1.1", HOST))
    add("method-not-token", REQUEST_LINE, msg("G(T / HTTP/1.1", HOST), short=True)
    add("method-nul", REQUEST_LINE, msg("GE\x00T / HTTP/1.1", HOST))
    add("method-1000", REQUEST_LINE, msg("M" * 1000 + " / HTTP/1.1", HOST))
    add("method-empty", REQUEST_LINE, msg(" / HTTP/1.1", HOST))
    add("options-asterisk", REQUEST_LINE, msg("OPTIONS * HTTP/1.1", HOST), short=True)
    add("get-asterisk", REQUEST_LINE, msg("GET * HTTP/1.1", HOST))
    add("connect-authority", REQUEST_LINE, msg("CONNECT h.test:443 HTTP/1.1", "Host: h.test:443"), short=True)
    add("get-authority-form", REQUEST_LINE, msg("GET h.test:80 HTTP/1.1", HOST))
    add("absolute-form", REQUEST_LINE, msg("GET http://h.test/abs HTTP/1.1", HOST), short=True)
    add("absolute-form-port", REQUEST_LINE, msg("GET http://h.test:8080/abs HTTP/1.1", "Host: h.test:8080"))
    add("absolute-form-https", REQUEST_LINE, msg("GET https://h.test/abs HTTP/1.1", HOST))
    add("absolute-form-uppercase", REQUEST_LINE, msg("GET HTTP://H.TEST/abs HTTP/1.1", HOST))
    add("absolute-form-userinfo", REQUEST_LINE, msg("GET http://u:p@h.test/abs HTTP/1.1", HOST))
    add("absolute-form-other-host", REQUEST_LINE, msg("GET http://other.test/abs HTTP/1.1", HOST), short=True,
        note="the authority wins over Host (RFC 9112 section 3.2.2)")
    add("absolute-form-no-path", REQUEST_LINE, msg("GET http://h.test HTTP/1.1", HOST))
    add("absolute-form-no-host-field", REQUEST_LINE, msg("GET http://h.test/abs HTTP/1.1"))
    add("absolute-form-ftp", REQUEST_LINE, msg("GET ftp://h.test/abs HTTP/1.1", HOST))
    add("target-query", REQUEST_LINE, msg("GET /a?b=c&d HTTP/1.1", HOST))
    add("target-pct-00", REQUEST_LINE, msg("GET /a%00b HTTP/1.1", HOST))
    add("target-bad-pct", REQUEST_LINE, msg("GET /a%zz HTTP/1.1", HOST))
    add("target-fragment", REQUEST_LINE, msg("GET /a#frag HTTP/1.1", HOST))
    add("target-relative", REQUEST_LINE, msg("GET a/b HTTP/1.1", HOST))
    add("target-double-slash", REQUEST_LINE, msg("GET //h.test/a HTTP/1.1", HOST))
    add("target-dot-segments", REQUEST_LINE, msg("GET /a/../../b HTTP/1.1", HOST))
    add("target-space", REQUEST_LINE, msg("GET /a b HTTP/1.1", HOST))
    add("target-ctl", REQUEST_LINE, msg("GET /a\x01 HTTP/1.1", HOST))
    add("target-del", REQUEST_LINE, msg("GET /a\x7f HTTP/1.1", HOST))
    add("target-high-byte", REQUEST_LINE, msg("GET /a\x80 HTTP/1.1", HOST))
    add("target-tab", REQUEST_LINE, msg("GET /a\tb HTTP/1.1", HOST))
    add("target-4k", REQUEST_LINE, msg("GET /" + "t" * 4096 + " HTTP/1.1", HOST))
    add("target-9k", REQUEST_LINE, msg("GET /" + "t" * 9216 + " HTTP/1.1", HOST))
    add("target-20k", REQUEST_LINE, msg("GET /" + "t" * 20480 + " HTTP/1.1", HOST))
    add("version-0.9-simple", REQUEST_LINE, b"GET /\r\n", short=True,
        note="an HTTP/0.9 simple request: no version, no head")
    add("version-1.0-host", REQUEST_LINE, msg("GET / HTTP/1.0", HOST))
    add("version-1.0-no-host", REQUEST_LINE, msg("GET / HTTP/1.0"), short=True)
    add("version-1.0-post-cl", REQUEST_LINE, msg("POST / HTTP/1.0", "Content-Length: 4", body="abcd"))
    for version in ("HTTP/0.9", "HTTP/2.0", "HTTP/1.2", "HTTP/3.0", "HTTP/1.10", "http/1.1", "HTTP/01.1",
                    "HTTP/1", "HTTP/1.", "HTTPS/1.1", "HTTP/9.9", "HTTP/1.1\x00", "HTTP/1.1 "):
        add("version-" + slug(version), REQUEST_LINE, msg(f"GET / {version}", HOST),
            short=version == "HTTP/2.0")
    add("garbage-line", REQUEST_LINE, msg("hello", HOST))
    add("h2-preface", REQUEST_LINE, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    add("line-two-spaces", REQUEST_LINE, msg("GET  / HTTP/1.1", HOST))
    add("line-tabs", REQUEST_LINE, msg("GET\t/\tHTTP/1.1", HOST))
    add("line-leading-crlf", REQUEST_LINE, b"\r\n" + msg("GET / HTTP/1.1", HOST))
    add("line-leading-two-crlf", REQUEST_LINE, b"\r\n\r\n" + msg("GET / HTTP/1.1", HOST))
    add("line-leading-space", REQUEST_LINE, msg(" GET / HTTP/1.1", HOST))
    add("line-no-version", REQUEST_LINE, msg("GET /", HOST))
    add("line-bare-lf", REQUEST_LINE, b"GET / HTTP/1.1\nHost: h.test\r\n\r\n")

    # --- connection management ------------------------------------------
    g, g2 = get(line="GET /1 HTTP/1.1"), get(line="GET /2 HTTP/1.1")
    add("pipeline-2-get", CONNECTION, g + g2, sent=2, short=True)
    add("pipeline-3-get", CONNECTION, g + g2 + get(line="GET /3 HTTP/1.1"), sent=3)
    add("pipeline-10-get", CONNECTION, b"".join(get(line=f"GET /{i} HTTP/1.1") for i in range(10)), sent=10)
    add("pipeline-get-post", CONNECTION, g + post("Content-Length: 4", body="abcd"), sent=2)
    add("pipeline-post-get", CONNECTION, post("Content-Length: 4", body="abcd") + g2, sent=2, short=True)
    add("pipeline-chunked-get", CONNECTION, post("Transfer-Encoding: chunked", body=CHUNKED_ABCD) + g2, sent=2)
    add("pipeline-head-get", CONNECTION, msg("HEAD /1 HTTP/1.1", HOST) + g2, sent=2, head_responses=1)
    add("pipeline-get-malformed", CONNECTION, g + get("X-A : b", line="GET /2 HTTP/1.1"), sent=2, short=True)
    add("pipeline-malformed-get", CONNECTION, get("X-A : b", line="GET /1 HTTP/1.1") + g2, sent=2,
        note="after a refused request nothing more of the connection may reach the upstream")
    add("pipeline-close-then-get", CONNECTION, get("Connection: close", line="GET /1 HTTP/1.1") + g2, sent=1,
        short=True, note="the request after Connection: close is not one")
    add("pipeline-http10-then-get", CONNECTION, msg("GET /1 HTTP/1.0", HOST) + g2, sent=1)
    add("pipeline-http10-keepalive", CONNECTION,
        msg("GET /1 HTTP/1.0", HOST, "Connection: keep-alive") + g2, sent=2)
    add("pipeline-smuggle-cl-te", CONNECTION,
        post("Content-Length: 44", "Transfer-Encoding: chunked",
             body="0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h.test\r\n\r\n"), sent=2,
        note="chunked wins: the second request is real; by CL it is body")
    add("split-head-at-cr-lf", CONNECTION, (b"GET / HTTP/1.1\r", b"\nHost: h.test\r\n\r\n"))
    add("split-head-in-three", CONNECTION, (b"GET / HT", b"TP/1.1\r\nHo", b"st: h.test\r\n\r\n"))
    add("split-body-later", CONNECTION, (post("Content-Length: 4"), b"abcd"))
    add("split-chunks-later", CONNECTION,
        (post("Transfer-Encoding: chunked"), b"4\r\nab", b"cd\r\n0\r\n", b"\r\n"))
    add("split-pipeline", CONNECTION, (g + b"GET /2 HTTP/1.1\r\n", b"Host: h.test\r\n\r\n"), sent=2)
    # Expect.
    add("expect-100-await", CONNECTION, (post("Expect: 100-continue", "Content-Length: 4"), b"abcd"),
        between=AWAIT_100, short=True)
    add("expect-100-body-at-once", CONNECTION, post("Expect: 100-continue", "Content-Length: 4", body="abcd"))
    add("expect-100-chunked", CONNECTION,
        (post("Expect: 100-continue", "Transfer-Encoding: chunked"), CHUNKED_ABCD.encode()), between=AWAIT_100)
    add("expect-100-cl-zero", CONNECTION, post("Expect: 100-continue", "Content-Length: 0"))
    add("expect-100-capitals", CONNECTION,
        (post("Expect: 100-Continue", "Content-Length: 4"), b"abcd"), between=AWAIT_100)
    add("expect-100-http10", CONNECTION,
        msg("POST / HTTP/1.0", HOST, "Expect: 100-continue", "Content-Length: 4", body="abcd"))
    add("expect-unknown", CONNECTION, post("Expect: something-else", "Content-Length: 4", body="abcd"))
    add("expect-100-get", CONNECTION, get("Expect: 100-continue"))
    # Upgrade.
    add("upgrade-websocket", CONNECTION,
        get("Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="), short=True)
    add("upgrade-h2c", CONNECTION, get("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__"))
    add("upgrade-without-connection", CONNECTION, get("Upgrade: websocket"))
    add("upgrade-post-body", CONNECTION,
        post("Connection: Upgrade", "Upgrade: websocket", "Content-Length: 4", body="abcd"))
    add("upgrade-http10", CONNECTION, msg("GET / HTTP/1.0", HOST, "Connection: Upgrade", "Upgrade: websocket"))
    # Hop-by-hop fields and what Connection names.
    add("connection-close", CONNECTION, get("Connection: close"))
    add("connection-keep-alive", CONNECTION, get("Connection: keep-alive"))
    add("connection-names-custom", CONNECTION, get("Connection: X-Hop", "X-Hop: 1", "X-End: 2"), short=True)
    add("connection-names-content-length", CONNECTION,
        post("Connection: Content-Length", "Content-Length: 4", body="abcd"), short=True,
        note="Content-Length frames this message: it may not be erased as hop-by-hop")
    add("connection-names-content-length-get", CONNECTION, get("Connection: Content-Length"))
    add("connection-names-transfer-encoding", CONNECTION,
        post("Connection: Transfer-Encoding", "Transfer-Encoding: chunked", body=CHUNKED_ABCD), short=True)
    add("connection-names-host", CONNECTION, get("Connection: Host"), short=True)
    add("connection-names-te", CONNECTION, get("Connection: TE", "TE: trailers"))
    add("connection-names-upgrade-only", CONNECTION, get("Connection: Upgrade"))
    add("connection-names-xff", CONNECTION, get("Connection: X-Forwarded-For", "X-Forwarded-For: 10.0.0.1"))
    add("connection-names-cookie", CONNECTION, get("Connection: Cookie", "Cookie: a=b"))
    add("connection-names-authorization", CONNECTION, get("Connection: Authorization", "Authorization: Basic dTpw"))
    add("connection-names-expect", CONNECTION,
        post("Connection: Expect", "Expect: 100-continue", "Content-Length: 4", body="abcd"))
    add("connection-list-close-custom", CONNECTION, get("Connection: close, X-Hop", "X-Hop: 1"))
    add("connection-list-empty-items", CONNECTION, get("Connection: ,, X-Hop ,", "X-Hop: 1"))
    add("connection-two-fields", CONNECTION, get("Connection: X-Hop", "Connection: X-Hop2", "X-Hop: 1", "X-Hop2: 2"))
    add("connection-keep-alive-field", CONNECTION, get("Connection: Keep-Alive", "Keep-Alive: timeout=5"))
    add("keep-alive-field-alone", CONNECTION, get("Keep-Alive: timeout=5"))
    add("proxy-connection", CONNECTION, get("Proxy-Connection: keep-alive"))
    add("te-trailers", CONNECTION, get("TE: trailers"))
    add("te-gzip", CONNECTION, get("TE: gzip"))
    add("trailer-field", CONNECTION, get("Trailer: X-T"))
    return c


def _generated():
    """Families of cases that differ in one value."""
    c = []
    # Content-Length values, body "abcd" (a correct value is 4).
    for value in (" 4", "4 ", "\t4", "+4", "-4", "04", "0004", "4.0", "4e0", "0x4", "4,4", "4, 4", "4,5",
                  "4,", ",4", "", "4 4", "4\x00", "18446744073709551620", "99999999999999999999"):
        c.append(Case("cl-value-" + slug(value), FRAMING, (post("Content-Length: " + value, body="abcd"),),
                      short=value in ("+4", "4, 4")))
    # Transfer-Encoding values, one chunked body.
    for value in ("Chunked", "CHUNKED", "chunked ", "\tchunked", "chunked, chunked", "gzip, chunked",
                  "chunked, gzip", "identity", "identity, chunked", "xchunked", "chunked;q=1", "chunk", "",
                  "\"chunked\"", "chunked,", ",chunked", "chunked\x0b"):
        c.append(Case("te-value-" + slug(value), FRAMING,
                      (post("Transfer-Encoding: " + value, body=CHUNKED_ABCD),),
                      short=value == "chunked, gzip"))
    # Transfer-Encoding field-name variants beside a Content-Length that frames
    # the body differently: whoever does not see chunked reads 4 bytes, and
    # "\r\n0\r\n\r\n" is left over as the start of a next request.
    for name in ("transfer-encoding", "TRANSFER-ENCODING", "Transfer-Encoding ", "Transfer-Encoding\t",
                 "Transfer_Encoding", "Transfer-Encoding\x00", "X-Pad: 1\r\n Transfer-Encoding"):
        c.append(Case("te-name-" + slug(name.replace("X-Pad: 1\r\n", "fold")), FRAMING,
                      (post("Content-Length: 4", name + ": chunked", body="1\r\nZ\r\n0\r\n\r\n"),),
                      short=name == "Transfer-Encoding "))
    # Chunk sizes, with 4 data bytes (10 for A/a).
    for size, data in (("04", "abcd"), ("0000000000000004", "abcd"), (" 4", "abcd"), ("4 ", "abcd"),
                       ("4\t", "abcd"), ("+4", "abcd"), ("-4", "abcd"), ("0x4", "abcd"), ("4.0", "abcd"),
                       ("g", "abcd"), ("", "abcd"), ("4\x00", "abcd"), ("A", "0123456789"),
                       ("a", "0123456789"), ("1FFFFFFFFFFFFFFFF", "abcd"), ("FFFFFFFFFFFFFFFF4", "abcd")):
        c.append(Case("chunk-size-" + slug(size), FRAMING,
                      (post("Transfer-Encoding: chunked", body=f"{size}\r\n{data}\r\n0\r\n\r\n"),),
                      short=size in ("-4", "1FFFFFFFFFFFFFFFF")))
    # Chunk extensions on a 4-byte chunk.
    for ext in (";a=b", ";a", ";a=\"q s\"", " ;a=b", "; a=b", ";a=b;c=d", ";a=\x01", ";\x00", ";a=\x7f",
                ";", ";a=b\rc", ";a=" + "x" * 4096):
        name = "chunk-ext-" + (slug(ext) if len(ext) < 40 else "4k")
        c.append(Case(name, FRAMING,
                      (post("Transfer-Encoding: chunked", body=f"4{ext}\r\nabcd\r\n0\r\n\r\n"),),
                      short=ext == ";a=\x01"))
    # Field-name characters: separators and controls are not token characters.
    for ch in "()<>@,;\\\"/[]?={}\x00\x7f\x80\xff_.~!#":
        c.append(Case("name-char-" + slug(ch), HEADERS, (get(f"X{ch}A: v"),),
                      short=ch == "("))
    # Bytes inside a field value: controls are refused, obs-text passes.
    for byte in (0x00, 0x01, 0x07, 0x08, 0x0B, 0x0C, 0x0E, 0x1B, 0x1F, 0x7F, 0x80, 0xFF):
        c.append(Case(f"value-byte-x{byte:02x}", HEADERS, (get(f"X-A: a{chr(byte)}b"),),
                      short=byte in (0x00, 0x0B)))
    return c


def all_cases():
    cases = _hand_written() + _generated()
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"duplicate case names: {sorted(dupes)}"
    return cases


def short_cases():
    return [c for c in all_cases() if c.short]
