"""What the benchmark scripts share: a real `wharf server` on a temp data dir and free loopback
ports, and calls to its API."""

import json
import os
import subprocess
import time
import urllib.request


def api(base, key, method, path, body=None):
    """One API call with the admin's key; the answer's JSON."""
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
    """`wharf server` on `data` with the settings `extra`, until closed: `url` is its API,
    `router` its HTTP router's (host, port), `started` how long it took to listen."""

    def __init__(self, wharf, data, extra):
        env = {
            **os.environ,
            "WHARF_DATA_DIR": data,
            "WHARF_API_LISTEN": "127.0.0.1:0",
            "WHARF_API_TLS_LISTEN": "127.0.0.1:0",
            "WHARF_ROUTER_LISTEN": "127.0.0.1:0",
            "WHARF_ROUTER_TLS_LISTEN": "127.0.0.1:0",
            "WHARF_RENDEZVOUS_LISTEN": "127.0.0.1:0",
            "WHARF_LOG": "warn",
            # A benchmark's server leaves nothing behind when it stops.
            "WHARF_STOP_DYNOS": "true",
            **extra,
        }
        began = time.perf_counter()
        self.process = subprocess.Popen([wharf, "server"], env=env, stdout=subprocess.PIPE, text=True)
        self.url = self.router = None
        for line in self.process.stdout:
            if line.startswith("wharf: routing app traffic on http://"):
                host, port = line.rsplit("/", 1)[-1].strip().rsplit(":", 1)
                self.router = (host, int(port))
            if line.startswith("wharf: API listening on "):
                self.url = line.split("on ", 1)[1].strip()
                break
        if self.url is None or self.router is None:
            raise RuntimeError(f"wharf server stopped before it listened (exit {self.process.wait()})")
        self.started = time.perf_counter() - began
        self.key = open(os.path.join(data, "admin-api-key")).read().strip()

    def call(self, method, path, body=None):
        return api(self.url, self.key, method, path, body)

    def close(self):
        self.process.terminate()
        self.process.wait()
