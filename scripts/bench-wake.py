"""Wake benchmark: a real `wharf server` (temp data dir, free ports) runs the Procfile fixture
app as an Eco app that sleeps after 2 s; each round waits until its dyno is idle, then times
one request through the router until the response. Compared with the same app's bare start
(`python3 server.py`, no container) to its first 200, and with a request to the awake app.

Usage: python3 scripts/bench-wake.py path/to/wharf [ROUNDS]"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from wharf_bench import Server, api

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "buildpacks/test/fixtures/procfile-only")
APP = "sleepy"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(addr, host, path="/"):
    """One GET on a new connection; the status code."""
    with socket.create_connection(addr) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def first_200(addr, host, deadline=60.0):
    """Polls every millisecond until a GET answers 200."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if get(addr, host) == 200:
                return
        except OSError:
            pass
        time.sleep(0.001)
    raise RuntimeError(f"no 200 from {addr}")


def bare_boot():
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["python3", "server.py"],
        cwd=FIXTURE,
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
    )
    try:
        first_200(("127.0.0.1", port), "localhost")
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait()


def main():
    wharf = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    data = tempfile.mkdtemp(prefix="wharf-bench-")
    server = Server(wharf, data, {"WHARF_ECO_SLEEP_AFTER": "2"})
    try:
        api_url, router, key = server.url, server.router, server.key
        api(api_url, key, "POST", "/apps", {"name": APP})
        repo = tempfile.mkdtemp(prefix="wharf-bench-app-")
        shutil.copytree(FIXTURE, repo, dirs_exist_ok=True)
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run(git + ["init", "-q", "-b", "main"], cwd=repo, check=True)
        subprocess.run(git + ["add", "-A"], cwd=repo, check=True)
        subprocess.run(git + ["commit", "-qm", "app"], cwd=repo, check=True)
        remote = f"http://git:{key}@{api_url.split('//', 1)[1]}/{APP}.git"
        subprocess.run(git + ["push", "-q", remote, "main"], cwd=repo, check=True)
        api(api_url, key, "PATCH", f"/apps/{APP}/formation/web", {"size": "eco"})
        host = f"{APP}.localhost"

        def state():
            return [d["state"] for d in api(api_url, key, "GET", f"/apps/{APP}/dynos")]

        wakes, awake = [], []
        for _ in range(rounds):
            while state() != ["idle"]:
                time.sleep(0.2)
            time.sleep(0.5)  # its container is gone
            started = time.perf_counter()
            status = get(router, host)
            wakes.append(time.perf_counter() - started)
            assert status == 200, status
            for _ in range(20):
                started = time.perf_counter()
                get(router, host)
                awake.append(time.perf_counter() - started)
        bare = [bare_boot() for _ in range(rounds)]
    finally:
        server.close()
        shutil.rmtree(data, ignore_errors=True)

    def ms(values):
        return f"{statistics.median(values) * 1000:8.1f} ms   (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"

    print(f"| {f'wake ({rounds} rounds)':<49} | median (min, max)                 |")
    print("|---------------------------------------------------|-----------------------------------|")
    print(f"| bare start to first 200 (python3, no container)   | {ms(bare)} |")
    print(f"| request to a sleeping app, through the router     | {ms(wakes)} |")
    print(f"| request to the awake app, through the router      | {ms(awake)} |")
    print(f"| wake cost over the bare start (medians)           | {(statistics.median(wakes) - statistics.median(bare)) * 1000:8.1f} ms |")


if __name__ == "__main__":
    main()
