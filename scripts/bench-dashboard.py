"""Time to first byte of the dashboard and the API calls behind its pages: a server with 200
apps, one of them with a week of metrics history (written by wharf-metrics' `history`
example while the server is stopped). Prints a markdown table; asserts nothing."""

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from wharf_bench import Server

APPS = 200
RUNS = 30


def timed(url, path, headers):
    """(time to first byte, whole answer) in ms, and the body's length."""
    host = url.split("//", 1)[1]
    connection = http.client.HTTPConnection(host, timeout=30)
    connection.connect()
    began = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    first = time.perf_counter() - began
    body = response.read()
    whole = time.perf_counter() - began
    connection.close()
    if response.status not in (200, 304):
        raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
    return first * 1000, whole * 1000, len(body)


def log_in(server):
    """A dashboard session for the admin: the cookie to send."""
    host = server.url.split("//", 1)[1]
    connection = http.client.HTTPConnection(host, timeout=30)
    email = server.call("GET", "/account")["email"]
    connection.request(
        "POST",
        "/session",
        body=json.dumps({"email": email, "api_key": server.key}),
        headers={"Content-Type": "application/json"},
    )
    response = connection.getresponse()
    response.read()
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    connection.close()
    return cookie


def main():
    wharf, history = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="wharf-bench-dashboard-")
    # The add-on servers' users pass through it, as through any data dir's parents.
    os.chmod(work, 0o711)
    data = os.path.join(work, "data")
    extra = {"WHARF_NETWORK_NAME": "wharfbd", "WHARF_DYNO_NETWORK": "198.19.240.0/20"}
    server = Server(wharf, data, extra)
    try:
        began = time.perf_counter()
        ids = [server.call("POST", "/apps", {"name": f"bench-{n:03}"})["id"] for n in range(APPS)]
        made = time.perf_counter() - began
        server.close()
        began = time.perf_counter()
        subprocess.run([history, "--into", data, "--app", ids[0]], check=True, stdout=subprocess.DEVNULL)
        wrote = time.perf_counter() - began
        server = Server(wharf, data, extra)
        cookie = log_in(server)
        print(f"{APPS} apps created in {made:.1f}s; a week of history for bench-000 written in {wrote:.1f}s")
        headers = {"Cookie": cookie, "Accept-Encoding": "gzip", "Accept": "application/vnd.heroku+json; version=3"}
        cases = [
            ("baseline: GET /health", "/health"),
            ("baseline: GET /apps (200 apps)", "/apps"),
            ("page: GET / (every page's HTML)", "/"),
            ("page: GET /assets/js/main.js", "/assets/js/main.js"),
            ("apps page: GET /app-summaries", "/app-summaries"),
        ]
        for kind in ("router", "dynos", "events"):
            for window in ("24h", "7d"):
                cases.append((f"metrics page: {kind} {window}", f"/apps/bench-000/metrics/{kind}?range={window}"))
        print()
        print("| request | TTFB median (ms) | TTFB p95 (ms) | whole answer median (ms) | bytes |")
        print("|---|---|---|---|---|")
        for label, path in cases:
            timed(server.url, path, headers)  # warm: the first read of a day file, gzip
            runs = [timed(server.url, path, headers) for _ in range(RUNS)]
            firsts = sorted(r[0] for r in runs)
            wholes = [r[1] for r in runs]
            p95 = firsts[int(len(firsts) * 0.95) - 1]
            print(
                f"| {label} | {statistics.median(firsts):.1f} | {p95:.1f} | "
                f"{statistics.median(wholes):.1f} | {runs[0][2]} |"
            )
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


main()
