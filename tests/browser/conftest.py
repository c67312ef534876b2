"""What the status-page browser tests drive: `tenantwatch demo` started as a
process (one per module, its URL read from what it prints), and headless
Chromium through Debian's chromedriver."""

import os
import pathlib
import queue
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

# The one definition of which binary to start, shared with the other suite.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tenantwatch_binary import binary  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "target" / "artifacts"
READY_TIMEOUT_S = 90


def wait_ready(url, timeout) -> bool:
    """Until the daemon at `url` answers /readyz with 200 (every collector
    has run once); False if it did not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "readyz", timeout=5) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


class Demo:
    """A running `tenantwatch demo`: its status page URL and process."""

    def __init__(self, args, ready_timeout=READY_TIMEOUT_S):
        self.proc = subprocess.Popen(
            [str(binary()), "demo", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: "queue.Queue[str | None]" = queue.Queue()

        def pump():
            # Keeps reading, so the demo never writes into a full or closed pipe.
            for line in self.proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self.printed = []
        self.url = None
        deadline = time.monotonic() + 30
        while self.url is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                pytest.fail("demo exited before printing its URL: " + "\n".join(self.printed))
            self.printed.append(line)
            words = line.split()
            if words[:2] == ["status", "page"]:
                self.url = words[2]
        if not wait_ready(self.url, ready_timeout):
            pytest.fail(f"demo not ready after {ready_timeout} s")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def chrome():
    """Headless Chromium (as root in CI: no sandbox), or a skip/fail when absent."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        if os.environ.get("CI"):
            pytest.fail("CI installs chromium and chromium-driver")
        pytest.skip("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


@pytest.fixture(scope="module")
def demo(request):
    d = Demo(getattr(request.module, "DEMO_ARGS", []))
    yield d
    d.stop()


@pytest.fixture(scope="module")
def browser():
    b = chrome()
    yield b
    b.quit()
