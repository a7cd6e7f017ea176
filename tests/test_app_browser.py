"""The leaderboard in a real browser: `evalhub app` serving the store of real toy-world compares, Debian's
Chromium (headless) drawing it. Screenshots are kept under test-artifacts/."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser import Browser, find_chromium
from tests.conftest import REPO

ARTIFACTS = REPO / "test-artifacts"
LEADERBOARD_READY = ("document.querySelector('[data-testid=\"stDataFrame\"] canvas') && "
                     "document.querySelector('[data-testid=\"stVegaLiteChart\"] svg, [data-testid=\"stVegaLiteChart\"] canvas')")
RUN_READY = "document.querySelector('[data-testid=\"stTabs\"]') && document.querySelector('[data-testid=\"stText\"]')"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as the kernel lists them) with a socket listening on `port`."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                addresses.add(address)
    return addresses


@pytest.fixture(scope="module")
def served_app(app_store):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "evalhub", "app", "--db", str(app_store["db"]), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                cookies = response.headers.get_all("Set-Cookie") or []
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"evalhub app did not come up: {server.stderr.read()[-3000:]}")
            time.sleep(0.25)
    yield {"url": url, "port": port, "cookies": cookies}
    server.send_signal(signal.SIGINT)  # Ctrl+C: `evalhub app` is the Streamlit server itself (exec)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    assert not _listening_addresses(port), "the Streamlit server outlived `evalhub app`"


def test_served_on_loopback_only_with_xsrf_protection(served_app):
    assert _listening_addresses(served_app["port"]) == {"0100007F"}  # 127.0.0.1, and nothing else
    assert any(cookie.startswith("_streamlit_xsrf=") for cookie in served_app["cookies"])


def test_leaderboard_and_run_page_in_chromium(served_app, app_store):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; `make test` installs it)")
    with Browser(chromium) as browser:
        browser.open(served_app["url"] + "/", LEADERBOARD_READY)
        browser.screenshot(ARTIFACTS / "leaderboard.png")
        page = browser.evaluate("document.body.innerText")
        assert "Which fine-tune beats its base?" in page and "Ranking across runs" in page
        assert browser.evaluate("document.querySelectorAll('[data-testid=\"stDataFrame\"]').length") >= 2
        assert not browser.evaluate("document.querySelector('[data-testid=\"stException\"]')")

        # The run over the hostile golden set: its markup is on the page as text and never ran.
        browser.open(f"{served_app['url']}/?run={app_store['multi']['run_id']}", RUN_READY)
        browser.evaluate("Array.from(document.querySelectorAll('[role=tab]')).find(t => t.innerText.trim() === 'Items').click()")
        time.sleep(1)
        browser.screenshot(ARTIFACTS / "run-items.png")
        text = browser.evaluate("document.body.textContent")
        assert "<script>window.__evalhub_xss = 1</script>Translate into Zorvish." in text
        assert '<img src=x onerror="window.__evalhub_xss = 2">' in text
        assert browser.evaluate("window.__evalhub_xss === undefined")
        assert browser.evaluate("document.querySelectorAll('img[src=\"x\"], img[src*=\"127.0.0.1:9\"]').length") == 0
        assert not browser.evaluate("document.querySelector('[data-testid=\"stException\"]')")
    assert (ARTIFACTS / "leaderboard.png").stat().st_size > 10_000
