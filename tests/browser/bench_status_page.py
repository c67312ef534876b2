"""Figures for docs/benchmarks.md: the status page's size and how fast it
serves and renders in headless Chromium at many tenants. Prints them; asserts
nothing (timing targets are not tests).

    .venv/bin/python tests/browser/bench_status_page.py --tenants 5000
    .venv/bin/python tests/browser/bench_status_page.py --url http://127.0.0.1:PORT/

Without --url it starts `tenantwatch sim --tenants N` and `tenantwatch run`
against the config the sim writes (Partner Center discovery, as `run`
defaults to; the demo's GDAP listing pages slowly at thousands of tenants).
"""

import argparse
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from conftest import binary, chrome, wait_ready  # noqa: E402


class Estate:
    """`tenantwatch sim` with N tenants and `tenantwatch run` against it."""

    def __init__(self, tenants, ready_timeout=1800):
        self.dir = tempfile.TemporaryDirectory(prefix="tw-page-bench-")
        config = pathlib.Path(self.dir.name) / "tenantwatch.toml"
        self.sim = subprocess.Popen(
            [str(binary()), "sim", "--tenants", str(tenants), "--state-dir", self.dir.name,
             "--write-config", str(config), "--resource-graph-page-size", "1000"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in self.sim.stdout:
            if line.strip() == "ready":
                break
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        self.daemon = subprocess.Popen(
            [str(binary()), "run", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_ready(self.url, ready_timeout):
            self.stop()
            raise SystemExit(f"daemon not ready after {ready_timeout} s")

    def stop(self):
        for p in (self.daemon, self.sim):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        self.dir.cleanup()


def fetch(url):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        body = r.read()
    return body, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=5000)
    ap.add_argument("--url", help="a running daemon's status page instead of starting a demo")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    demo = None
    if args.url:
        url = args.url
    else:
        print(f"starting sim and daemon with {args.tenants} tenants …", flush=True)
        started = time.monotonic()
        demo = Estate(args.tenants)
        print(f"ready after {time.monotonic() - started:.0f} s", flush=True)
        url = demo.url
    try:
        body, _ = fetch(url)
        rows = body.count(b"<tr data-tenant=")
        serve = sorted(fetch(url)[1] for _ in range(args.runs))
        print(f"tenants in the table: {rows}")
        print(f"HTML size: {len(body)} bytes ({len(body) / max(rows, 1):.0f} bytes per tenant)")
        print(f"server, GET / (median of {args.runs}): {statistics.median(serve) * 1000:.0f} ms")
        b = chrome()
        try:
            loads = []
            for _ in range(args.runs):
                b.get(url)
                loads.append(b.execute_script("""
                    var n = performance.getEntriesByType('navigation')[0];
                    return {response: n.responseEnd - n.requestStart, interactive: n.domInteractive,
                            dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd};"""))
            for key, what in (("response", "request start to last byte"),
                              ("interactive", "DOM interactive"),
                              ("dcl", "DOMContentLoaded handled (script ran)"),
                              ("load", "load event end")):
                print(f"browser, {what} (median of {args.runs}): "
                      f"{statistics.median(x[key] for x in loads):.0f} ms")
            actions = b.execute_script("""
                function time(f) { var t = performance.now(); f(); document.body.offsetHeight; return performance.now() - t; }
                var box = document.getElementById('filter');
                var filter = time(function () { box.value = 'contoso'; box.dispatchEvent(new Event('input')); });
                var clear = time(function () { box.value = ''; box.dispatchEvent(new Event('input')); });
                var th = document.querySelector('#tenants th');
                var sort = time(function () { th.click(); });
                return {filter: filter, clear: clear, sort: sort};""")
            print(f"browser, typing a filter (hide non-matching rows, with layout): {actions['filter']:.0f} ms")
            print(f"browser, clearing the filter: {actions['clear']:.0f} ms")
            print(f"browser, sorting by name (with layout): {actions['sort']:.0f} ms")
        finally:
            b.quit()
    finally:
        if demo:
            demo.stop()


if __name__ == "__main__":
    main()
