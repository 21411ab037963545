#!/usr/bin/env python3
"""Flood benchmark of the daemon's one HTTP listener (docs/reliability.md, issue 14).

Starts the given daemon binary on a scratch configuration (embedded store, no SQS, no
notifiers), then holds N connections open against it -- half idle, half slowloris (a header
byte every few seconds) -- and meanwhile times GET /healthz from fresh connections. Prints how
many flood connections the daemon closed by itself, /healthz latency (p50/p99/max, failures) and
the daemon's RSS before and during the flood; with --wrong-token-bodies K it also holds K
requests with a wrong token announcing 2 MB bodies, to show they are refused before the body.

    python3 scripts/flood.py $CARGO_TARGET_DIR/release/pipeline-responder --connections 2000
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def healthz(port, timeout=10.0):
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = s.recv(1024)
            ok = data.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    return ok, (time.monotonic() - start) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=45)
    ap.add_argument("--wrong-token-bodies", type=int, default=100)
    ap.add_argument("--max-connections", type=int, default=512)
    ap.add_argument("--nofile", type=int, default=0, help="the daemon's open-file limit (ulimit -n)")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="pr-flood-")
    port = 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(f"""
[aws]
region = "us-east-1"
account_id = "123456789012"
[http]
listen = "127.0.0.1:{port}"
api_token = "flood-benchmark-token-0123456789abcdef"
max_connections = {args.max_connections}
[store]
path = "{work}/state.db"
[sources.sqs]
enabled = false
[notifiers.sns]
enabled = false
[[environments]]
name = "production"
""")
    env = {"PATH": os.environ.get("PATH", ""), "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    log = open(os.path.join(work, "daemon.log"), "w")
    def limit():
        if args.nofile:
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    daemon = subprocess.Popen([args.binary, "--config", config, "run"], env=env,
                              stdout=subprocess.DEVNULL, stderr=log, preexec_fn=limit)
    try:
        for _ in range(200):
            if healthz(port, 1.0)[0]:
                break
            time.sleep(0.1)
        else:
            sys.exit(f"the daemon did not answer; see {work}/daemon.log")
        idle_rss = rss_mb(daemon.pid)

        flood = []
        refused_at_connect = 0
        for i in range(args.connections):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.setblocking(False)
                if i % 2:
                    s.send(b"GET /healthz HTTP/1.1\r\n")
                flood.append(s)
            except OSError:
                refused_at_connect += 1
        bodies, refused_early = [], 0
        for _ in range(args.wrong_token_bodies):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{\"a\":\"")
                s.settimeout(5)
                if s.recv(64).startswith(b"HTTP/1.1 401"):
                    refused_early += 1
                try:
                    s.sendall(b"x" * 1_900_000)
                except OSError:
                    pass
                bodies.append(s)
            except OSError:
                pass
        latencies, failures, peak = [], 0, idle_rss
        end = time.monotonic() + args.seconds
        tick = 0
        while time.monotonic() < end:
            ok, ms = healthz(port)
            latencies.append(ms)
            failures += 0 if ok else 1
            peak = max(peak, rss_mb(daemon.pid))
            tick += 1
            if tick % 10 == 0:
                for s in flood[1::2]:
                    try:
                        s.send(b"X")
                    except OSError:
                        pass
            time.sleep(0.1)
        closed = 0
        for s in flood:
            try:
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        latencies.sort()
        pct = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))]
        print(f"flood: {args.connections} connections (half idle, half slowloris) + "
              f"{args.wrong_token_bodies} wrong-token 2 MB bodies for {args.seconds} s, max_connections {args.max_connections}"
              + (f", ulimit -n {args.nofile}" if args.nofile else ""))
        print(f"  refused at connect: {refused_at_connect}; closed by the daemon by the end: {closed} of {len(flood)}")
        print(f"  /healthz: {len(latencies)} requests, {failures} failed, p50 {pct(0.5):.1f} ms, "
              f"p99 {pct(0.99):.1f} ms, max {latencies[-1]:.1f} ms")
        print(f"  wrong-token 2 MB requests answered 401 before their body was sent: {refused_early} of {len(bodies)}")
        print(f"  RSS: idle {idle_rss:.1f} MB, peak during the flood {peak:.1f} MB")
        for s in flood + bodies:
            s.close()
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


if __name__ == "__main__":
    main()
