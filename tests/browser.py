"""A headless Chromium driven over the Chrome DevTools protocol, for the app's real-browser test.

Streamlit draws its page client-side from a websocket, so `chromium --dump-dom` returns an empty
skeleton; this waits for the elements a test names instead, then reads the DOM and takes screenshots.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1600,1200"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One Chromium process with one page. Use as a context manager."""

    def __init__(self, executable: str):
        self._profile = tempfile.TemporaryDirectory(prefix="evalhub-chromium-")
        # Its own session, so closing reaches Chromium's helper processes too: they keep writing
        # to the profile for a moment after the main process exits.
        self._process = subprocess.Popen([executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}",
                                          "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        self._ids = itertools.count(1)
        self._closing = contextlib.ExitStack()

    def __enter__(self) -> "Browser":
        from websockets.sync.client import connect

        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self._socket = self._closing.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10))
        return self

    def __exit__(self, *exc) -> None:
        self._closing.close()
        self._signal_group(signal.SIGTERM)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        deadline = time.monotonic() + 10
        while self._signal_group(0) and time.monotonic() < deadline:  # helpers still alive
            time.sleep(0.1)
        self._signal_group(signal.SIGKILL)
        time.sleep(0.2)
        self._profile.cleanup()

    def _signal_group(self, signum: int) -> bool:
        """Send `signum` to every process of Chromium's session; False when none is left."""
        try:
            os.killpg(self._process.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result (events arriving meanwhile are skipped)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 90) -> None:
        """Load `url` and wait until the JavaScript expression `ready` is true."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({ready})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: the page never got ready ({ready})")
            time.sleep(0.25)

    def screenshot(self, path: Path) -> Path:
        # The full page height, so the screenshot shows everything below the fold too.
        height = self.evaluate("document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1200")
        self.call("Emulation.setDeviceMetricsOverride", width=1600, height=int(min(max(height, 1200), 8000)),
                  deviceScaleFactor=1, mobile=False)
        time.sleep(0.5)  # let the canvas-drawn dataframe repaint at the new size
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
