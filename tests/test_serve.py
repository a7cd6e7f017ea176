"""`evalhub serve` round trip: vLLM's OpenAI server for the toy base and its adapter, answered through the openai
backend, then stopped."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from evalhub.generate import BackendOptions, generate_answers
from evalhub.golden import load_golden

pytest.importorskip("vllm")


def _lines(stream) -> "queue.Queue[str | None]":
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump():
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.fixture(scope="module")
def served(toy_world, toy_adapter):
    """`evalhub serve` on a free 127.0.0.1 port; yields what it printed, as {key: [values]}."""
    command = [sys.executable, "-m", "evalhub", "serve", str(toy_world / "base"), "--name", "toy-base",
               "--adapter", f"zorvish={toy_adapter}", "--port", "0", "--kv-cache-gib", "0.25", "--enforce-eager"]
    # Its own process group, so teardown stops the server's whole process tree even if a test fails.
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    lines, printed = _lines(server.stdout), {}
    deadline = time.monotonic() + 600
    try:
        while "adapter" not in printed:
            line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
            assert line is not None, f"evalhub serve exited with code {server.wait()} before serving"
            key, _, value = line.strip().partition(": ")
            printed.setdefault(key, []).append(value)
        yield {"printed": printed, "process": server}
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.mark.slow
def test_serve_round_trip_through_the_openai_backend(served, toy_world, toy_adapter, toy_manifest):
    printed = served["printed"]
    url = printed["base_url"][0]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert printed["base"] == ["toy-base"] and printed["adapter"] == ["zorvish"]

    items = load_golden(toy_world / toy_manifest["golden"])[:8]
    served_answers = generate_answers("toy-base", "zorvish", items, backend="openai",
                                      options=BackendOptions(base_urls=(url,), concurrency=4))
    local_answers = generate_answers(toy_world / "base", toy_adapter, items, backend="hf")
    for role in ("base", "tuned"):
        assert all(served_answers[role][i.id].status == "ok" for i in items)
        # The server templates the chat itself; greedy answers still match the local ones.
        agree = sum(served_answers[role][i.id].output == local_answers[role][i.id].output for i in items)
        assert agree >= 7, f"{role}: {agree}/8 served answers match the local ones"
    assert sum(served_answers["tuned"][i.id].output.startswith("In Zorvish:") for i in items) >= 6

    # SIGTERM stops `evalhub serve` and the server it started.
    served["process"].send_signal(signal.SIGTERM)
    assert served["process"].wait(timeout=60) == 0


def test_serve_rejects_a_folder_that_is_not_an_adapter(toy_world):
    done = subprocess.run([sys.executable, "-m", "evalhub", "serve", str(toy_world / "base"), "--adapter",
                           f"zorvish={toy_world / 'base'}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "has no adapter_config.json; pass a LoRA adapter folder" in done.stderr.strip().splitlines()[-1]
