#!/usr/bin/env python3
"""How fast vane rolls a failing canary back, and what clients see meanwhile:
the canary is at 20%, then its demo service is told to fail 30% of its
requests (the main demo's failing revision); the time from that moment to the
moment every proxy routes 0% to it, and the 5xx answers the load's clients
got after it, in four ways:

  interval-1s     the controller alone: threshold 1, request-success-rate over 1s
  abort           vane's abort (1 s reads)
  guard           the proxies' guard (20% of at least 20 in 1s), vane-control rolls back on the trip
  guard+fallback  the same with the fallback: the canary's failures go once to the primary

Real processes on 127.0.0.1; closed-loop load through the 2 proxies.

  python3 bench/rollback_reaction.py [BUILD_DIR] [--rounds N]
"""
import json, os, re, subprocess, sys, tempfile, threading, time, urllib.request

build = next((a for a in sys.argv[1:] if not a.startswith("--") and not a.isdigit()), "build")
rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
BIN = {n: os.path.join(build, p) for n, p in
       [("demo", "demo/vane-demo"), ("proxy", "proxy/vane-proxy"), ("control", "control/vane-control")]}


def start(args, pattern):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = p.stdout.readline()
        m = re.search(pattern, line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            return p, int(m.group(1))
    raise RuntimeError("no line matching " + pattern)


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


def one_round(mode):
    procs = []
    try:
        primary, pport = start([BIN["demo"], "--listen", "127.0.0.1:0", "--version", "1"], r"listening on .*:(\d+)")
        canary, cport = start([BIN["demo"], "--listen", "127.0.0.1:0", "--version", "2"], r"listening on .*:(\d+)")
        procs += [primary, canary]
        tmp = tempfile.mkdtemp()
        admins = []
        for i in range(2):
            cfg = os.path.join(tmp, f"proxy{i}.yaml")
            with open(cfg, "w") as f:
                f.write(f"""admin: {{address: 127.0.0.1:0}}
drain_delay: 0s
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        split: [{{cluster: app-primary, weight: 100}}, {{cluster: app-canary, weight: 0}}]
clusters:
  - {{name: app-primary, endpoints: [127.0.0.1:{pport}]}}
  - {{name: app-canary, endpoints: [127.0.0.1:{cport}]}}
""")
            p = subprocess.Popen([BIN["proxy"], "--config", cfg, "--workers", "1"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            procs.append(p)
            port = admin = None
            while port is None or admin is None:
                line = p.stdout.readline()
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if m and "listener http" in line: port = int(m.group(1))
                if m and "admin listening" in line: admin = int(m.group(1))
            threading.Thread(target=lambda p=p: [None for _ in p.stdout], daemon=True).start()
            admins.append((port, admin))
        stop = threading.Event()
        failing = threading.Event()
        errors = [0]

        def load(port):
            while not stop.is_set():
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                except Exception:
                    if failing.is_set():
                        errors[0] += 1
        for port, _ in admins:
            threading.Thread(target=load, args=(port,), daemon=True).start()
        extra = {
            "abort": "    threshold: 100\n    abort: {maxErrorRate: 20, minRequests: 5}\n",
            "interval-1s": "    threshold: 1\n    metrics:\n"
                           "      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1s}\n",
            "guard": "    threshold: 100\n    guard: {maxErrorPercent: 20, minRequests: 20, window: 1s}\n",
            "guard+fallback": "    threshold: 100\n    guard: {maxErrorPercent: 20, minRequests: 20, window: 1s}\n"
                              "    fallback: true\n",
        }[mode]
        cdir = os.path.join(tmp, "canaries")
        os.makedirs(cdir)
        proxies = ", ".join(f"http://127.0.0.1:{a}" for _, a in admins)
        def write(revision):  # whole, then renamed: the controller polls the file
            with open(os.path.join(cdir, "app.yaml.tmp"), "w") as f:
                f.write(f"""apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: app}}
spec:
  revision: "{revision}"
  route: app
  proxies: [{proxies}]
  analysis:
    interval: 1s
    maxWeight: 20
    stepWeight: 20
{extra}""")
            os.rename(os.path.join(cdir, "app.yaml.tmp"), os.path.join(cdir, "app.yaml"))
        write("1")  # Flagger's first sight: revision 1 is the baseline; revision 2 starts the run
        ctl = subprocess.Popen([BIN["control"], "--canaries", cdir, "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(ctl)
        seen = []
        threading.Thread(target=lambda: [seen.append(l) for l in ctl.stdout], daemon=True).start()
        while not any("Initialization done!" in l for l in seen):
            time.sleep(0.01)
        write("2")
        while not any("canary weight 20" in l for l in seen):
            time.sleep(0.01)
        time.sleep(1.5)  # let the healthy canary be measured at 20% for a while
        t0 = time.monotonic()
        failing.set()
        http("PUT", f"http://127.0.0.1:{cport}/_demo/config", '{"error_percent": 30}')
        while True:
            weights = [json.loads(http("GET", f"http://127.0.0.1:{a}/routes/app"))["split"][1]["weight"]
                       for _, a in admins]
            if all(w == 0 for w in weights):
                elapsed = time.monotonic() - t0
                time.sleep(0.2)  # requests in flight at the switch finish
                stop.set()
                return elapsed, errors[0]
            time.sleep(0.01)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


for mode in ("interval-1s", "abort", "guard", "guard+fallback"):
    results = [one_round(mode) for _ in range(rounds)]
    times = sorted(t for t, _ in results)
    print(f"{mode:15s} failing -> 0% on 2 proxies: " + ", ".join(f"{t:.2f}s" for t in times) +
          f"  (median {times[len(times) // 2]:.2f}s); client 5xx after the canary failed: " +
          ", ".join(str(e) for _, e in results))
