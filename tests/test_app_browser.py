"""The leaderboard and the Review page in a real browser: `evalhub app` serving the store of real toy-world
compares, Debian's Chromium (headless) drawing it and voting on it. Screenshots are kept under test-artifacts/."""

from __future__ import annotations

import shutil
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
def served_app(app_store, tmp_path_factory):
    # A copy of the store: the Review page's votes land in it, not in the store other modules read.
    db = tmp_path_factory.mktemp("served") / "evalhub.duckdb"
    shutil.copy(app_store["db"], db)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "evalhub", "app", "--db", str(db), "--port", str(port)],
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
    yield {"url": url, "port": port, "cookies": cookies, "db": db}
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


REVIEWER = "reviewer-ana"
REVIEW_READY = "document.body.innerText.includes('Blind review') && document.querySelector('[data-testid=\"stProgress\"]')"


def _click(browser: Browser, selector: str, text: str, scope: str = "document") -> None:
    """Click the element matching `selector` (inside `scope`) whose visible text is `text`."""
    found = browser.evaluate(f"(() => {{ const e = Array.from({scope}.querySelectorAll({selector!r}))"
                             f".find(e => e.innerText.trim() === {text!r}); if (e) e.click(); return Boolean(e); }})()")
    assert found, f"no {selector} reading {text!r} on the page"


def _choose(browser: Browser, group: str, option: str) -> None:
    """Click `option` of the radio group whose label is `group`."""
    scope = (f"Array.from(document.querySelectorAll('[data-testid=\"stRadio\"]'))"
             f".find(r => r.querySelector('[data-testid=\"stWidgetLabel\"]').innerText.trim() === {group!r})")
    _click(browser, "[role=radiogroup] label", option, scope)


def _wait(browser: Browser, condition: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not browser.evaluate(f"Boolean({condition})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the page never showed {condition}")
        time.sleep(0.25)
    time.sleep(0.5)  # let the rerun finish drawing


TEXTS = "Array.from(document.querySelectorAll('[data-testid=\"stMain\"] [data-testid=\"stText\"]')).map(e => e.textContent)"


def _item_shown(browser: Browser, prompt: str, timeout: float = 60) -> list[str]:
    """The page's texts once the item with `prompt` is drawn: the prompt, the ideal answer, Answer 1, Answer 2."""
    deadline = time.monotonic() + timeout
    while True:
        texts = browser.evaluate(TEXTS)
        if len(texts) == 4 and texts[0].strip() == prompt.strip():
            return texts
        if time.monotonic() > deadline:
            raise TimeoutError(f"the item {prompt[:60]!r} never came up; the page shows {texts}")
        time.sleep(0.25)


def test_a_reviewer_votes_blind_on_five_items_in_chromium(served_app, app_store, toy_world, toy_manifest, toy_adapter):
    from evalhub.app.review_queue import shown_first, verdict_of
    from evalhub.store import run_answers, votes_for_run

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; `make test` installs it)")
    run_id, db = app_store["multi"]["run_id"], served_app["db"]
    answers = run_answers(run_id, db)
    hostile, toy = str(app_store["hostile"]), str(app_store["toy_golden"])
    # What must never reach the reviewer: the models' paths and names (the base's folder name, "base", is a
    # common word, so its whole path stands for it).
    secrets = [str(toy_world / toy_manifest["base"]), str(toy_adapter), toy_adapter.name]
    per_set = {path: sorted(k for k in answers if k[0] == path) for path in (hostile, toy)}
    assert [i for _, i in per_set[hostile]] == ["hostile-markdown", "hostile-script"] and len(per_set[toy]) >= 3
    # Two votes on the hostile set, then three on the toy set; in each, the items come in their stable order.
    plan = [(per_set[hostile][0], "1"), (per_set[hostile][1], "2"),
            (per_set[toy][0], "tie"), (per_set[toy][1], "1"), (per_set[toy][2], "2")]
    labels = {"1": "1 is better", "2": "2 is better", "tie": "Tie"}
    seen = []
    with Browser(chromium) as browser:
        # As an authenticating proxy forwards every request (the page's websocket included) with its user.
        browser.call("Network.enable")
        browser.call("Network.setExtraHTTPHeaders", headers={"X-Forwarded-User": REVIEWER})
        browser.open(served_app["url"] + "/", LEADERBOARD_READY)
        _click(browser, "label", "Review", "document.querySelector('[data-testid=\"stSidebar\"]')")
        _wait(browser, REVIEW_READY)
        page = browser.evaluate("document.body.innerText")
        assert f"Reviewing as {REVIEWER}" in page, "the proxy's user names the reviewer"
        assert Path(hostile).name in page, "the newest run (over the hostile and the toy golden set) is up first"
        _choose(browser, "Items", "all")  # every item, not only the judge's disputed ones
        _wait(browser, f"document.body.innerText.includes('0 voted / {len(answers)} to review')")
        golden, voted_here = None, 0
        for count, (item, choice) in enumerate(plan):
            if item[0] != golden:
                golden, voted_here = item[0], 0
                _choose(browser, "Golden set", Path(golden).name)
                _wait(browser, f"document.body.innerText.includes('0 voted / {len(per_set[golden])} to review')")
            texts = _item_shown(browser, answers[item]["prompt"])
            html = browser.evaluate("document.documentElement.outerHTML")
            for secret in secrets:
                assert secret not in html, f"the Review page shows {secret}"
            seen.append(texts)
            text = browser.evaluate("document.body.textContent")
            if item[1] == "hostile-markdown":  # Markdown in the prompt stays characters
                assert "![pixel](http://127.0.0.1:9/x.png) **bold**" in text
            if item[1] == "hostile-script":
                browser.screenshot(ARTIFACTS / "review.png")
                # The hostile item's markup (prompt, and the ideal answer in its closed expander) is text.
                assert "<script>window.__evalhub_xss = 1</script>Translate into Zorvish." in text
                assert '<img src=x onerror="window.__evalhub_xss = 2">' in text
            _click(browser, "button", labels[choice])
            voted_here += 1
            _wait(browser, f"document.body.innerText.includes('{voted_here} voted / {len(per_set[golden])} to review')")
        assert browser.evaluate("window.__evalhub_xss === undefined")
        assert browser.evaluate("document.querySelectorAll('img[src=\"x\"], img[src*=\"127.0.0.1:9\"]').length") == 0
        assert not browser.evaluate("document.querySelector('[data-testid=\"stException\"]')")

    votes = votes_for_run(run_id, db)
    assert len(votes) == 5 and {v.reviewer for v in votes} == {REVIEWER}
    voted = {(v.golden_file, v.item_id): v for v in votes}
    assert sorted(voted) == sorted(item for item, _ in plan)
    for (item, choice), (_, _, first_text, second_text) in zip(plan, seen):
        vote, entry = voted[item], answers[item]
        # Stored from the candidate's side, through the order this reviewer saw.
        assert vote.shown_first == shown_first(REVIEWER, run_id, item)
        assert vote.verdict == verdict_of(choice, vote.shown_first)
        first, second = ("candidate", "baseline") if vote.shown_first == "candidate" else ("baseline", "candidate")
        assert (first_text.strip(), second_text.strip()) == ((entry[first] or "").strip() or "(no answer)",
                                                            (entry[second] or "").strip() or "(no answer)")
