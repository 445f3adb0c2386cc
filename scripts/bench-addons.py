"""Add-on benchmark (see scripts/bench-addons): a real `wharf server` on a temp data dir and
free loopback ports, its add-on servers its own (the default) or an operator's (the baseline:
this host's PostgreSQL on 5432 and Redis on 6379, accepted though they are open).

Usage: python3 scripts/bench-addons.py path/to/wharf [ROUNDS]"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

APP = "bench"
OPERATOR = {
    "WHARF_ADDON_POSTGRES_ADMIN_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "WHARF_ADDON_REDIS_URL": "redis://127.0.0.1:6379",
    "WHARF_ADDONS_ALLOW_OPEN_SERVERS": "true",
}


def api(base, key, method, path, body=None):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {key}",
            "Accept": "application/vnd.heroku+json; version=3",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


class Server:
    """`wharf server` on `data`, until closed; `started` is how long it took to listen."""

    def __init__(self, wharf, data, extra):
        env = {
            **os.environ,
            "WHARF_DATA_DIR": data,
            "WHARF_API_LISTEN": "127.0.0.1:0",
            "WHARF_API_TLS_LISTEN": "127.0.0.1:0",
            "WHARF_ROUTER_LISTEN": "127.0.0.1:0",
            "WHARF_ROUTER_TLS_LISTEN": "127.0.0.1:0",
            "WHARF_RENDEZVOUS_LISTEN": "127.0.0.1:0",
            "WHARF_NETWORK_NAME": "wbench",
            "WHARF_DYNO_NETWORK": "198.19.99.0/24",
            "WHARF_LOG": "warn",
            **extra,
        }
        began = time.perf_counter()
        self.process = subprocess.Popen([wharf, "server"], env=env, stdout=subprocess.PIPE, text=True)
        self.url = None
        for line in self.process.stdout:
            if line.startswith("wharf: API listening on "):
                self.url = line.split("on ", 1)[1].strip()
                break
        if self.url is None:
            raise RuntimeError(f"wharf server stopped before it listened (exit {self.process.wait()})")
        self.started = time.perf_counter() - began
        self.key = open(os.path.join(data, "admin-api-key")).read().strip()

    def call(self, method, path, body=None):
        return api(self.url, self.key, method, path, body)

    def close(self):
        self.process.terminate()
        self.process.wait()


def create_times(server, service, rounds):
    """Seconds each `addons:create` took; each add-on is destroyed before the next."""
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        addon = server.call("POST", f"/apps/{APP}/addons", {"plan": service})
        times.append(time.perf_counter() - began)
        server.call("DELETE", f"/apps/{APP}/addons/{addon['name']}")
    return times


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def processes_in(directory):
    """Processes working in `directory` (add-on servers chdir to their data)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/cwd").startswith(directory):
                    found.append(int(name))
            except OSError:
                pass
    return found


def ms(values):
    return f"{statistics.median(values) * 1000:7.1f} ms (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"


def main():
    wharf = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    rows = []
    memory = {}
    for label, extra in (("Wharf's own servers", {}), ("operator's servers (baseline)", OPERATOR)):
        data = tempfile.mkdtemp(prefix="wharf-bench-")
        try:
            server = Server(wharf, data, extra)
            first_start = server.started
            try:
                server.call("POST", "/apps", {"name": APP})
                redis = create_times(server, "heroku-redis", rounds)
                postgres = create_times(server, "heroku-postgresql", rounds)
                if not extra:
                    for _ in range(10):
                        server.call("POST", f"/apps/{APP}/addons", {"plan": "heroku-redis"})
                    servers = processes_in(os.path.join(data, "addons/redis"))
                    memory["redis-server per add-on (10 add-ons)"] = statistics.median(
                        rss_kib(pid) for pid in servers
                    )
                    memory["PostgreSQL cluster, all processes (idle)"] = sum(
                        rss_kib(pid) for pid in processes_in(os.path.join(data, "addons/postgres"))
                    )
            finally:
                server.close()
            again = Server(wharf, data, extra)
            again.close()
            rows.append((label, redis, postgres, first_start, again.started))
        finally:
            shutil.rmtree(data, ignore_errors=True)

    print(f"addons:create, {rounds} rounds each: median (min, max)")
    print("| servers | heroku-redis | heroku-postgresql | first start | next start |")
    print("|---|---|---|---|---|")
    for label, redis, postgres, first, again in rows:
        print(f"| {label} | {ms(redis)} | {ms(postgres)} | {first * 1000:.0f} ms | {again * 1000:.0f} ms |")
    print()
    print("| memory (RSS) | |")
    print("|---|---|")
    for label, kib in memory.items():
        print(f"| {label} | {kib / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
