#!/usr/bin/env python3
"""How fast the proxy guard stops a failing canary (issue: delivery safety).

Open-loop load from `vane-bench load` (1,000 req/s by default) through one
vane-proxy (2 workers) splitting 90/10 with
`guard: {cluster: app-canary, max_error_percent: 20, min_requests: 20, window: 1s}`.
After 2 s the canary's demo service is told to fail every request. From the
proxy's access log: the first canary failure's answer (its start + duration)
and the start of the last request sent to the canary; the figure is the time
between the two, with the number of canary failures clients saw. No
fallback here (with it, clients see none: the failures are then counted as
the canary's attempts only, not in the access log).

  python3 bench/guard_reaction.py [BUILD_DIR] [--rounds N] [--rate R]
"""
import datetime, json, os, re, subprocess, sys, tempfile, threading, time, urllib.request

args = sys.argv[1:]
rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 5
rate = int(args[args.index("--rate") + 1]) if "--rate" in args else 1000
build = next((a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or not args[i - 1].startswith("--"))),
             "build")
BIN = {n: os.path.join(build, p) for n, p in
       [("demo", "demo/vane-demo"), ("proxy", "proxy/vane-proxy"), ("bench", "bench/vane-bench")]}


def start(cmd, pattern):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ports = {}
    deadline = time.time() + 30
    while time.time() < deadline and len(ports) < len(pattern):
        line = p.stdout.readline()
        for key, pat in pattern.items():
            m = re.search(pat, line)
            if m:
                ports[key] = int(m.group(1))
    if len(ports) < len(pattern):
        raise RuntimeError(f"{cmd[0]}: no line matching {pattern}")
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return p, ports


def put(url, body):
    req = urllib.request.Request(url, data=body.encode(), method="PUT")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


def unix(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def one_round():
    procs = []
    try:
        primary, pp = start([BIN["demo"], "--listen", "127.0.0.1:0", "--version", "1"], {"p": r"listening on .*:(\d+)"})
        canary, cp = start([BIN["demo"], "--listen", "127.0.0.1:0", "--version", "2"], {"p": r"listening on .*:(\d+)"})
        procs += [primary, canary]
        tmp = tempfile.mkdtemp()
        cfg, log = os.path.join(tmp, "proxy.yaml"), os.path.join(tmp, "access.log")
        with open(cfg, "w") as f:
            f.write(f"""admin: {{address: 127.0.0.1:0}}
drain_delay: 0s
listeners:
  - name: http
    address: 127.0.0.1:0
    routes:
      - name: app
        split: [{{cluster: app-primary, weight: 90}}, {{cluster: app-canary, weight: 10}}]
        guard: {{cluster: app-canary, max_error_percent: 20, min_requests: 20, window: 1s}}
clusters:
  - {{name: app-primary, endpoints: [127.0.0.1:{pp['p']}]}}
  - {{name: app-canary, endpoints: [127.0.0.1:{cp['p']}]}}
""")
        proxy, ports = start([BIN["proxy"], "--config", cfg, "--workers", "2", "--access-log", log],
                             {"http": r"listener http listening on 127\.0\.0\.1:(\d+)",
                              "admin": r"admin listening on 127\.0\.0\.1:(\d+)"})
        procs.append(proxy)
        load = subprocess.Popen([BIN["bench"], "load", "--url", f"http://127.0.0.1:{ports['http']}/",
                                 "--rate", str(rate), "--duration", "5s", "--connections", "32", "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2)  # a bench's own pacing: the canary serves well for 2 s first
        put(f"http://127.0.0.1:{cp['p']}/_demo/config", '{"error_percent": 100}')
        load.communicate()
        tripped = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{ports['admin']}/routes/app").read())["guard"]
        time.sleep(0.2)  # the access log's writer drains every 50 ms
        first_failure, last_start, failures = None, None, 0
        with open(log) as f:
            for line in f:
                r = json.loads(line)
                if r["cluster"] != "app-canary":
                    continue
                start_s = unix(r["time"])
                last_start = start_s if last_start is None else max(last_start, start_s)
                if r["status"] >= 500:
                    failures += 1
                    end = start_s + r["duration_ms"] / 1000
                    first_failure = end if first_failure is None else min(first_failure, end)
        return (last_start - first_failure) * 1000, failures, tripped
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


results = [one_round() for _ in range(rounds)]
for ms, failures, g in results:
    print(f"first canary failure -> last canary request: {ms:7.1f} ms   canary failures seen by clients: "
          f"{failures:3d}   guard: tripped={g.get('tripped')} requests={g.get('requests')}")
times = sorted(ms for ms, _, _ in results)
print(f"{rate} req/s, canary 10%, 2 workers, {rounds} rounds: median {times[len(times) // 2]:.1f} ms, "
      f"max {times[-1]:.1f} ms")
