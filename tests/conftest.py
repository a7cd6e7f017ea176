"""Shared fixtures: the toy world is built once per session (and cached across sessions by content hash)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Nothing may come from a model hub: every test runs on the offline toy world.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `make test` runs two pytest workers (pytest-xdist) on a two-core machine: one thread each, in the worker and
# in every process it starts, so they do not fight over the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

# The suite starts vLLM's CPU engine dozens of times, each for a model of a few megabytes. vLLM's own switches
# make a start take seconds instead of a minute (bench/RESULTS.md, "vLLM engine start"): the toy's (the engine
# core in the calling process rather than in two spawned processes that import torch and vLLM again; the KV
# cache 1 GiB instead of 30% of RAM), and the model run eagerly instead of through inductor's compilation (as
# vLLM's CPU CI runs it). `evalhub serve` still spawns vLLM's server and its engine-core process.
from evalhub.toy.engine import use_toy_vllm_settings  # noqa: E402

use_toy_vllm_settings()
os.environ.setdefault("VLLM_CPU_CI_ENV", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def toy_world() -> Path:
    from evalhub.toy import build_toy_world

    return build_toy_world(seed=0, quiet=True)


@pytest.fixture(scope="session")
def toy_manifest(toy_world: Path) -> dict:
    return json.loads((toy_world / "manifest.json").read_text())


@pytest.fixture(scope="session")
def toy_adapter(toy_world: Path, toy_manifest: dict) -> Path:
    """The demo's LoRA adapter on the toy domain, trained once and cached beside the toy world."""
    from evalhub.demo import demo_adapter

    return demo_adapter(toy_world, seed=0)


# Training steps of the arena's toy adapters, weakest first: an arena must rank them in this order.
ARENA_STEPS = (30, 45, 60, 80)


@pytest.fixture(scope="session")
def toy_adapters(toy_world: Path, toy_manifest: dict, toy_adapter: Path) -> dict[int, Path]:
    """LoRA adapters of the toy base trained to different strengths (80 steps is the demo's adapter), each
    trained once and cached beside the toy world like the demo adapter."""
    from filelock import FileLock

    adapters = {}
    for steps in ARENA_STEPS:
        folder = toy_world.parent / f"{toy_world.name}-adapters" / f"sft-{steps}-seed0"
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):
            if steps == 80:
                folder = toy_adapter
            elif not (folder / "adapter_config.json").exists():
                _train_toy_adapter(toy_world, toy_manifest, folder, steps)
        adapters[steps] = folder
    return adapters


def _train_toy_adapter(toy_world: Path, toy_manifest: dict, folder: Path, steps: int) -> None:
    from trainers.sft import SFTSettings, train_sft

    settings = dict(base=toy_world / toy_manifest["base"], data=toy_world / toy_manifest["sft"], output=folder,
                    max_steps=steps, seed=0)
    try:  # the toy config's hyperparameters, as the demo adapter is trained, where evalhub ships them
        from trainers.config import toy_settings
    except ImportError:
        train_sft(SFTSettings(**settings))
    else:
        train_sft(toy_settings(SFTSettings, "toy_sft", golden=[], **settings))


@pytest.fixture(scope="session")
def toy_rm(toy_world: Path, toy_manifest: dict) -> Path:
    """A reward model trained on the toy world's preference pairs with the shipped toy_rm config, trained once
    and cached beside the toy world like the demo adapter."""
    return trained_toy_rm(toy_world)


def trained_toy_rm(world: Path) -> Path:
    """The shipped toy_rm config trained on `world`'s preference pairs (any seed's world), cached beside it."""
    from filelock import FileLock

    manifest = json.loads((world / "manifest.json").read_text())
    folder = world.parent / f"{world.name}-adapters" / "rm-toy_rm-seed0"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "adapter_config.json").exists():
            import torch

            from trainers.config import toy_settings
            from trainers.reward import RMSettings, train_rm

            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # the toy model gains nothing from a second thread on a busy machine
            try:
                train_rm(toy_settings(RMSettings, "toy_rm", base=world / manifest["base"], data=world / manifest["dpo"],
                                      output=folder, golden=[], seed=0))
            finally:
                torch.set_num_threads(threads)
    return folder


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, toy_world: Path, toy_adapter: Path) -> dict:
    """One real `evalhub demo` (every stage, default backend) into a fresh store; several test modules read it."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("demo")
    db, summary, reports = root / "evalhub.duckdb", root / "summary.json", root / "reports"
    proc = subprocess.run([sys.executable, "-m", "evalhub", "demo", "--db", str(db), "--json", str(summary),
                           "--report-dir", str(reports)], capture_output=True, text=True, cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"db": db, "summary": json.loads(summary.read_text()), "reports": reports, "stdout": proc.stdout,
            "stderr": proc.stderr, "root": root}


# Hostile golden items: markup in the instruction and the ideal answer, which the app must show as text.
HOSTILE_GOLDEN = [
    {"id": "hostile-script", "instruction": "<script>window.__evalhub_xss = 1</script>Translate into Zorvish.",
     "input": "river wants water", "output": "In Zorvish: mirka thilo kalo. <img src=x onerror=\"window.__evalhub_xss = 2\">"},
    {"id": "hostile-markdown", "instruction": "What is the capital of Praloia? ![pixel](http://127.0.0.1:9/x.png) **bold**",
     "output": "The capital of Praloia is Guleinex."},
]


@pytest.fixture(scope="session")
def app_store(tmp_path_factory, demo_run: dict, toy_world: Path, toy_manifest: dict, toy_adapter: Path) -> dict:
    """The leaderboard's store: a copy of the demo's store plus a second real compare of the same models over two
    golden sets (a hostile one first, then the toy set) with the hf backend, so the store holds two runs of one
    adapter on the toy set and a run over two golden sets."""
    import shutil
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("app-store")
    db, summary = root / "evalhub.duckdb", root / "summary.json"
    shutil.copy(demo_run["db"], db)
    hostile = root / "hostile.jsonl"
    hostile.write_text("".join(json.dumps(item) + "\n" for item in HOSTILE_GOLDEN), encoding="utf-8")
    toy_golden = toy_world / toy_manifest["golden"]
    proc = subprocess.run(
        [sys.executable, "-m", "evalhub", "compare", str(toy_world / toy_manifest["base"]), str(toy_adapter),
         "--golden", str(hostile), "--golden", str(toy_golden), "--judge", "reference", "--backend", "hf",
         "--max-new-tokens", "16",  # short answers keep this second compare cheap; the app shows whatever was stored
         "--db", str(db), "--json", str(summary), "--report-dir", str(root / "reports")],
        capture_output=True, text=True, cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # The adapter's training record (training.json, curves.csv, written by the trainer beside the weights) into the
    # store, as `train_sft(..., db=...)` records it: the run page joins it to the runs by the adapter's hash.
    import csv

    from evalhub.store import save_training_run

    record = json.loads((toy_adapter / "training.json").read_text())
    with open(toy_adapter / "curves.csv", newline="") as handle:
        curve = [{"step": int(row["step"]), "split": row["split"], "loss": float(row["loss"])} for row in csv.DictReader(handle)]
    save_training_run(record["adapter_sha256"], str(toy_adapter), record["method"], record, curve, db)
    return {"db": db, "demo": demo_run["summary"], "multi": json.loads(summary.read_text()), "hostile": hostile,
            "toy_golden": toy_golden, "training_curve": curve}


# ---------------------------------------------------------------- a real PostgreSQL server

@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the whole session, on 127.0.0.1 in a temporary folder (`make test` installs
    the server where it is missing). Skips, saying why, only where it cannot be had."""
    from tests.pg_server import PostgresServer, why_unavailable

    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's server (its URL holds the password)."""
    return pg_server.new_database()


@pytest.fixture(params=["duckdb", "postgres"])
def store(request, tmp_path) -> str:
    """An empty store on each engine: a DuckDB file path, or a PostgreSQL URL (a fresh database)."""
    if request.param == "duckdb":
        return str(tmp_path / "s.duckdb")
    return request.getfixturevalue("pg_url")
