"""`evalhub serve` round trip: vLLM's OpenAI server for the toy base and its adapter, answered through the openai
backend, then stopped."""

from __future__ import annotations

import json
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
from evalhub.records import GoldenItem

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

    # Each role on prompts it answers with confidence, so greedy answers cannot tip between backends on a
    # near-tie: the tuned adapter on its domain, the base on the general facts it was pretrained on.
    domain = load_golden(toy_world / toy_manifest["golden"])[:8]
    facts = [json.loads(line) for line in (toy_world / toy_manifest["tasks_path"] / "toy_general.jsonl").read_text().splitlines()]
    capitals = [GoldenItem(id=f["id"], instruction=f"What is the capital of {f['question'].split()[-2]}?",
                           output=f"{f['question']} {f['choices'][f['answer']]}.") for f in facts if f["id"].endswith("-capital")][:8]
    # Eight at once, so the server batches base and adapter requests together (where vLLM's CPU LoRA ops gave
    # base rows the adapter's weights: evalhub.models.vllm_engine.lora_args).
    options = BackendOptions(base_urls=(url,), concurrency=8)
    for role, items in (("tuned", domain), ("base", capitals)):
        served_answers = generate_answers("toy-base", "zorvish", items, backend="openai", options=options)[role]
        local_answers = generate_answers(toy_world / "base", toy_adapter, items, backend="hf")[role]
        assert all(served_answers[i.id].status == "ok" for i in items)
        if role == "base":  # the adapter's answer format on a base answer: the adapter leaked into the base's rows
            assert not [i.id for i in items if served_answers[i.id].output.startswith("In Zorvish")]
        # The server templates the chat itself; greedy answers still match the local ones.
        agree = sum(served_answers[i.id].output == local_answers[i.id].output for i in items)
        assert agree >= 7, f"{role}: {agree}/8 served answers match the local ones"
    assert sum(served_answers[i.id].output == i.output for i in capitals) >= 6  # the base knows its facts

    # SIGTERM stops `evalhub serve` and the server it started.
    served["process"].send_signal(signal.SIGTERM)
    assert served["process"].wait(timeout=60) == 0


def test_serve_rejects_a_folder_that_is_not_an_adapter(toy_world):
    done = subprocess.run([sys.executable, "-m", "evalhub", "serve", str(toy_world / "base"), "--adapter",
                           f"zorvish={toy_world / 'base'}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "has no adapter_config.json; pass a LoRA adapter folder" in done.stderr.strip().splitlines()[-1]
