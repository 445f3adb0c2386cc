"""Add-on benchmark (see scripts/bench-addons): a real `wharf server` on a temp data dir and
free loopback ports, its add-on servers its own (the default) or an operator's (the baseline:
this host's PostgreSQL on 5432 and Redis on 6379, accepted though they are open).

Usage: python3 scripts/bench-addons.py path/to/wharf [ROUNDS]"""

import os
import shutil
import statistics
import sys
import tempfile
import time

from wharf_bench import Server

APP = "bench"
# A dyno network of the benchmark's own, apart from the tests'.
NETWORK = {"WHARF_NETWORK_NAME": "wbench", "WHARF_DYNO_NETWORK": "198.19.99.0/24"}
OPERATOR = {
    "WHARF_ADDON_POSTGRES_ADMIN_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "WHARF_ADDON_REDIS_URL": "redis://127.0.0.1:6379",
    "WHARF_ADDONS_ALLOW_OPEN_SERVERS": "true",
}


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
            server = Server(wharf, data, {**NETWORK, **extra})
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
            again = Server(wharf, data, {**NETWORK, **extra})
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
