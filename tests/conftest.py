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
