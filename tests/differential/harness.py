#!/usr/bin/python3
"""Differential HTTP/1.x conformance harness: vane-proxy against nginx and HAProxy.

The same corpus of requests (corpus.py: framing, header syntax, request lines,
connection management; hand-written and generated) goes through vane-proxy,
nginx and HAProxy (Debian packages, generated configs, defaults otherwise),
each in front of its own recording upstream on 127.0.0.1 (recorder.py). For
every case and proxy the harness records three things:

  * what the client saw: the status of each response, in order, marked u (the
    upstream's answer, relayed) or p (made by the proxy), or "close" / "reset"
    / "timeout" when no response came;
  * what the upstream received: each request as the upstream parsed it --
    method, target (absolute-form reduced to its path), Host (lower case, no
    port), the other fields except those a proxy adds or re-frames on its own
    (Connection, Via, X-Forwarded-*, X-Real-IP, Forwarded, Content-Length,
    Transfer-Encoding), the decoded body, whether it was complete;
  * how many requests the upstream received and answered.

Each case is then classified:

  agree            all three saw and forwarded the same;
  vane laxer       BUG: vane's upstream got more requests than both peers'
                   (vane forwards what nginx and HAProxy both refuse); marked
                   "incomplete requests only" when what it forwarded was a head
                   (and part of a body) it then dropped;
  count mismatch   BUG: vane's upstream answered a different number of
                   requests than vane's client got answers from it, got more
                   requests than the client sent, or got bytes that are not a
                   request at all (desync, smuggling);
  vane crashed     BUG: the vane-proxy process died during the case;
  vane stricter    vane's upstream got fewer requests than both peers';
  differs          anything else (a different status, a field one proxy drops).

"vane alone" marks cases where nginx and HAProxy agree with each other and
vane does not; they are listed too.

Files: corpus.py (the cases), recorder.py (the recording upstream), proxies.py
(configs and processes), client.py (one client connection per case), this
file (runs, classifies, reports). Python 3 standard library only; traffic on
127.0.0.1 only; ports chosen by the OS; every wait has a deadline. The three
proxies run their cases at the same time, each in corpus order.

  /usr/bin/python3 tests/differential/harness.py [--short] [--vane BIN]
      [--json PATH] [--markdown PATH] [--case NAME ...] [--verbose] [--keep]

--short runs the cases marked short in corpus.py (well under a minute) and is
the ctest `differential_short`. The exit status is 1 when vane has a BUG-class
result on a case not in KNOWN_VANE_BUGS (differences never fail the run), 77
when nginx or HAProxy is not installed (the test is skipped), 2 when a proxy
does not start. scripts/differential.sh runs the whole corpus with reports.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import corpus  # noqa: E402
from client import Exchange, Timing  # noqa: E402
from proxies import HAPROXY, NGINX, HAProxy, Nginx, Vane  # noqa: E402
from recorder import RecordingUpstream  # noqa: E402

PROXIES = ("vane", "nginx", "haproxy")
PEERS = ("nginx", "haproxy")

# BUG-class results already reported and being fixed in vane; they do not
# fail the run (any other BUG does). Keep it short and remove names once fixed.
KNOWN_VANE_BUGS = frozenset({
    # "case-name",  # what is wrong; where it is being fixed
})

# Fields a proxy adds, removes or re-frames on its own: not compared.
NOT_COMPARED = {b"connection", b"via", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
                b"x-forwarded-port", b"x-real-ip", b"forwarded", b"content-length", b"transfer-encoding",
                b"host"}

BUG_CLASSES = ("vane laxer", "count mismatch", "vane crashed")
CLASS_ORDER = ("agree", "vane stricter", "differs") + BUG_CLASSES


def text(b):
    """Bytes as a JSON-able string, one character per byte."""
    return b.decode("latin-1") if isinstance(b, (bytes, bytearray)) else b


def clip(s, limit=1200):
    return s if len(s) <= limit else s[:limit] + f"...[{len(s) - limit} more]"


# --- normalising what the upstream received -------------------------------

def _path_of(target):
    m = re.match(rb"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", target)
    if not m:
        return target
    return target[m.end():] or b"/"


def _host_of(values):
    """Host compared as nginx's $host renders it: lower case, no port, no trailing dot."""
    hosts = []
    for v in values:
        m = re.match(rb"^(\[[^\]]*\]|[^:]*)(:.*)?$", v)
        hosts.append((m.group(1) if m else v).lower().rstrip(b"."))
    return b",".join(hosts) if hosts else None


def normalize(req):
    """The comparable view of one upstream request, and a fuller record for the report."""
    key = {
        "method": text(req.method),
        "target": text(_path_of(req.target)) if req.target is not None else None,
        "host": text(_host_of(req.header(b"host"))),
        "fields": sorted([text(n.lower()), text(v)] for n, v in req.headers if n.lower() not in NOT_COMPARED),
        "body": text(bytes(req.body)),
        "complete": req.complete,
        "error": req.error,
    }
    detail = dict(key, target_raw=text(req.target), version=text(req.version), framing=req.framing,
                  host_raw=[text(v) for v in req.header(b"host")],
                  trailers=[[text(n), text(v)] for n, v in req.trailers], conn=req.conn_id,
                  head=clip(text(req.raw_head), 600))
    return key, detail


# --- one case through one proxy --------------------------------------------

def run_case(proxy, upstream, case, timing):
    upstream.begin(case.name)
    ex = Exchange(proxy.port, case, timing)
    try:
        ex.run()
        # The upstream answered more than the client has read yet: read on (bounded).
        relayed = sum(1 for r in ex.finals() if r.from_upstream)
        if ex.close is None and upstream.answered() > relayed:
            ex.read(len(ex.finals()) + upstream.answered() - relayed)
    finally:
        ex.shutdown()
    rec = upstream.settle(timing.settle)
    responses = ex.responses()
    finals = [r for r in responses if not r.interim]
    tokens = [("u" if r.from_upstream else "p") + str(r.status) for r in finals]
    if not finals:
        tokens = [ex.close or "timeout"]
    keys, details = zip(*[normalize(r) for r in rec.requests]) if rec.requests else ((), ())
    relayed = sum(1 for r in finals if r.from_upstream)
    obs = {
        "client": tokens,
        "interim": [r.status for r in responses if r.interim],
        "close": ex.close,
        "timed_out": ex.timed_out,
        "send_error": ex.send_error,
        "received": clip(text(bytes(ex.rx)), 800),
        "upstream": list(keys),
        "upstream_detail": list(details),
        "upstream_count": len(rec.requests),
        "upstream_answered": rec.answered,
        "upstream_aborted": rec.aborted,
        "upstream_raw": {str(k): clip(text(bytes(v)), 1500) for k, v in rec.raw.items()},
        "relayed": relayed,
        "crashed": not proxy.alive(),
    }
    reasons = []
    # Bytes with no request line at all are not a request the client sent: the
    # proxy framed something wrong and the connection is out of step (desync).
    stray = [r for r in rec.requests if r.method is None and b" HTTP/" not in r.raw_head.split(b"\n")[0]]
    if stray:
        reasons.append(f"the upstream received bytes that are not a request: {bytes(stray[0].raw_head[:60])!r}")
    if rec.answered != relayed:
        reasons.append(f"the upstream answered {rec.answered}, the client got {relayed} of those answers")
    if len(rec.requests) > case.sent:
        reasons.append(f"the upstream saw {len(rec.requests)} requests, the client sent {case.sent}")
    obs["count_mismatch"] = reasons
    if obs["crashed"]:
        obs["exit_status"] = proxy.exit_status()
        obs["log_tail"] = proxy.log_tail()
    if rec.requests:
        obs["outcome"] = "forwarded"
    elif any(not r.from_upstream and isinstance(r.status, int) and r.status >= 400 for r in finals):
        obs["outcome"] = "refused"
    else:
        obs["outcome"] = "closed"
    return obs


def run_proxy(proxy, upstream, cases, timing, results, progress):
    for i, case in enumerate(cases):
        if not proxy.alive():
            proxy.start()  # it died in the previous case (recorded there)
        results[case.name][proxy.name] = run_case(proxy, upstream, case, timing)
        progress(proxy.name, i + 1, len(cases))


# --- classification ---------------------------------------------------------

def signature(obs):
    return json.dumps([obs["client"], obs["upstream"]], sort_keys=True)


def classify(obs):
    v = obs["vane"]
    if v["crashed"]:
        return "vane crashed"
    if v["count_mismatch"]:
        return "count mismatch"
    counts = {p: obs[p]["upstream_count"] for p in PROXIES}
    if counts["vane"] > max(counts[p] for p in PEERS):
        return "vane laxer"
    if len({signature(obs[p]) for p in PROXIES}) == 1:
        return "agree"
    if counts["vane"] < min(counts[p] for p in PEERS):
        return "vane stricter"
    return "differs"


def laxer_incomplete_only(obs):
    """A laxer vane whose upstream got no more *complete* requests than the peers':
    it forwarded a head (and maybe part of a body), then dropped the request."""
    complete = {p: sum(1 for r in obs[p]["upstream"] if r["complete"]) for p in PROXIES}
    return complete["vane"] <= max(complete[p] for p in PEERS)


def differs_in(obs):
    """Which observations are not the same for all three: client, upstream."""
    return [part for part in ("client", "upstream")
            if len({json.dumps(obs[p][part], sort_keys=True) for p in PROXIES}) > 1]


def vane_alone(obs):
    return signature(obs["nginx"]) == signature(obs["haproxy"]) != signature(obs["vane"])


# --- reports ----------------------------------------------------------------

def summarize(cases, results):
    rows = {}
    for klass in corpus.CLASSES + ("all",):
        rows[klass] = {"cases": 0, **{c: 0 for c in CLASS_ORDER},
                       **{p: {"forwarded": 0, "refused": 0, "closed": 0} for p in PROXIES}}
    for case in cases:
        r = results[case.name]
        for klass in (case.klass, "all"):
            row = rows[klass]
            row["cases"] += 1
            row[r["result"]] += 1
            for p in PROXIES:
                row[p][r["observations"][p]["outcome"]] += 1
    return rows


def markdown_table(rows, shown_bug_classes):
    cols = ["agree", "vane stricter", "differs"] + list(shown_bug_classes)
    header = ["class", "cases"] + [c + (" (bug)" if c in BUG_CLASSES else "") for c in cols] + \
             [f"{p} fwd / refused / closed" for p in PROXIES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for klass, row in rows.items():
        cells = [klass if klass != "all" else "**all**", str(row["cases"])] + [str(row[c]) for c in cols]
        cells += [f'{row[p]["forwarded"]} / {row[p]["refused"]} / {row[p]["closed"]}' for p in PROXIES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe(case, r):
    result = r["result"]
    if result == "vane laxer" and r["laxer_incomplete_only"]:
        result += " (incomplete requests only: forwarded, then dropped)"
    out = [f"  {case.name} [{case.klass}] -> {result}" + ("  (vane alone)" if r["vane_alone"] else "")]
    if case.note:
        out.append(f"    note: {case.note}")
    out.append(f"    sent ({case.sent} request(s)): {clip(repr(case.data), 300)}")
    for p in PROXIES:
        o = r["observations"][p]
        line = (f"    {p:8} client {' '.join(o['client'])}; upstream {o['upstream_count']} request(s),"
                f" answered {o['upstream_answered']}")
        if o["count_mismatch"]:
            line += "; COUNT: " + "; ".join(o["count_mismatch"])
        if o["upstream_aborted"]:
            line += f"; {o['upstream_aborted']} upstream connection(s) left mid-request (closed by the harness)"
        if o["crashed"]:
            line += f"; CRASHED (exit {o.get('exit_status')})"
        out.append(line)
        for d in o["upstream_detail"]:
            body = clip(repr(d["body"]), 120)
            status = "complete" if d["complete"] else "INCOMPLETE"
            err = f" error={d['error']!r}" if d["error"] else ""
            out.append(f"             {d['method']} {clip(str(d['target_raw']), 80)} {d['version']} host={d['host_raw']}"
                       f" {d['framing']} body={body} {status}{err}")
            if d["fields"]:
                out.append(f"               fields {clip(str(d['fields']), 300)}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--vane", default=os.path.join(here, "..", "..", "build", "proxy", "vane-proxy"))
    ap.add_argument("--short", action="store_true", help="the representative subset (the ctest)")
    ap.add_argument("--case", action="append", default=[], help="run only these cases (repeatable)")
    ap.add_argument("--json", help="write the machine-readable report here")
    ap.add_argument("--markdown", help="write the summary table (and bug list) here")
    ap.add_argument("--verbose", action="store_true", help="print every case's observations")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (configs, proxy logs)")
    ap.add_argument("--vane-arg", action="append", default=[], metavar="ARG",
                    help="one more vane-proxy argument (repeatable), e.g. --vane-arg=--log-level --vane-arg=debug")
    args = ap.parse_args()

    missing = [b for b in (NGINX, HAPROXY) if not os.access(b, os.X_OK)]
    if missing:
        print(f"differential: SKIP, not installed: {', '.join(missing)} (Debian packages nginx, haproxy;"
              " scripts/setup.sh installs them)")
        return 77
    if not os.access(args.vane, os.X_OK):
        print(f"differential: no vane-proxy binary at {args.vane} (build it, or pass --vane)")
        return 2

    cases = corpus.short_cases() if args.short else corpus.all_cases()
    if args.case:
        cases = [c for c in corpus.all_cases() if c.name in set(args.case)]
        unknown = set(args.case) - {c.name for c in cases}
        if unknown:
            print(f"differential: unknown case(s): {', '.join(sorted(unknown))}")
            return 2
    timing = Timing()

    workdir = tempfile.mkdtemp(prefix="vane-differential-")
    upstreams = {p: RecordingUpstream(p) for p in PROXIES}
    proxies = {"vane": Vane(workdir, upstreams["vane"], os.path.abspath(args.vane), args.vane_arg),
               "nginx": Nginx(workdir, upstreams["nginx"]),
               "haproxy": HAProxy(workdir, upstreams["haproxy"])}
    started = time.monotonic()
    try:
        try:
            for p in proxies.values():
                p.start()
        except RuntimeError as e:
            print(f"differential: {e}")
            return 2
        versions = {name: p.version() for name, p in proxies.items()}
        print(f"differential: {len(cases)} cases; " + "; ".join(
            f"{n} on 127.0.0.1:{p.port}" for n, p in proxies.items()), flush=True)

        results = {c.name: {} for c in cases}
        lock = threading.Lock()
        step = max(1, len(cases) // 4)

        def progress(name, done, total):
            if done % step == 0 and done < total:
                with lock:
                    print(f"  {name}: {done}/{total} ({time.monotonic() - started:.0f} s)", flush=True)

        errors = []

        def runner(name):
            try:
                run_proxy(proxies[name], upstreams[name], cases, timing, results, progress)
            except Exception as e:  # reported below; the other runners finish
                errors.append(f"{name}: {type(e).__name__}: {e}")

        threads = [threading.Thread(target=runner, args=(n,)) for n in PROXIES]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            print("differential: a runner failed:\n  " + "\n  ".join(errors))
            return 2
        restarts = {n: p.starts - 1 for n, p in proxies.items()}
    finally:
        for p in proxies.values():
            p.stop()
        for u in upstreams.values():
            u.close()
        if args.keep:
            print(f"differential: scratch directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    wall = time.monotonic() - started

    report = {}
    for case in cases:
        obs = results[case.name]
        result = classify(obs)
        report[case.name] = {"class": case.klass, "result": result, "vane_alone": vane_alone(obs),
                             "laxer_incomplete_only": result == "vane laxer" and laxer_incomplete_only(obs),
                             "differs_in": differs_in(obs),
                             "observations": obs}
    rows = summarize(cases, {n: r for n, r in report.items()})
    bugs = [c for c in cases if report[c.name]["result"] in BUG_CLASSES]
    alone = [c for c in cases if report[c.name]["vane_alone"] and c not in bugs]
    new_bugs = [c for c in bugs if c.name not in KNOWN_VANE_BUGS]
    fixed = sorted(n for n in KNOWN_VANE_BUGS if n in report and report[n]["result"] not in BUG_CLASSES)
    shown_bug_classes = [c for c in BUG_CLASSES if c != "vane crashed" or rows["all"][c]]
    status_only = sum(1 for c in cases if report[c.name]["result"] == "differs"
                      and report[c.name]["differs_in"] == ["client"])

    table = markdown_table(rows, shown_bug_classes)
    print()
    print(table)
    print(f"\n'differs': {status_only} of {rows['all']['differs']} only in what the client saw"
          " (the upstreams got the same)")
    print(f"{len(cases)} cases in {wall:.1f} s; {len(bugs)} BUG-class for vane"
          f" ({len(new_bugs)} not in KNOWN_VANE_BUGS); {len(alone)} more where vane alone differs from the"
          f" peers; proxy restarts {restarts}")
    if bugs:
        print("\nBUG-class cases (vane laxer than both peers, count mismatch, crash):")
        for c in bugs:
            print(describe(c, report[c.name]) + ("" if c.name not in KNOWN_VANE_BUGS else "\n    (known)"))
    if alone and (args.verbose or not args.short):
        print("\nvane alone (nginx and HAProxy agree, vane does not):")
        for c in alone:
            print(describe(c, report[c.name]))
    if args.verbose:
        print("\nall cases:")
        for c in cases:
            print(describe(c, report[c.name]))
    if fixed:
        print(f"\nnote: in KNOWN_VANE_BUGS but no longer a BUG (remove them): {', '.join(fixed)}")

    if args.json:
        meta = {"mode": "short" if args.short else ("cases" if args.case else "full"),
                "cases": len(cases), "wall_seconds": round(wall, 1), "versions": versions,
                "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "restarts": restarts,
                "known_vane_bugs": sorted(KNOWN_VANE_BUGS)}
        out = {"meta": meta, "summary": rows,
               "cases": [dict(name=c.name, klass=c.klass, note=c.note, sent=c.sent,
                              request=text(c.data), pieces=len(c.pieces), **report[c.name]) for c in cases]}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"Differential run ({'short' if args.short else 'full'}): {len(cases)} cases in {wall:.0f} s,"
                    f" {time.strftime('%Y-%m-%d')}; {versions['vane']}, {versions['nginx']},"
                    f" {versions['haproxy']}.\n\n{table}\n\n'differs': {status_only} of"
                    f" {rows['all']['differs']} only in what the client saw (the upstreams got the same).\n")
            if bugs:
                f.write("\nBUG-class cases: " + ", ".join(
                    f"`{c.name}` ({report[c.name]['result']})" for c in bugs) + "\n")
            if alone:
                f.write("\nvane alone (the peers agree with each other): " + ", ".join(
                    f"`{c.name}`" for c in alone) + "\n")
    return 1 if new_bugs else 0


if __name__ == "__main__":
    sys.exit(main())
