"""`evalhub compare BASELINE CANDIDATE` for any two models, and tags for deployed models: adapter against
adapter (one engine, two LoRAs; one hf model, the adapter switched) and a model of another base against an
adapter (loaded one after the other), on vLLM and hf; `evalhub tag` driving a gated compare."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ARENA_STEPS


def _evalhub(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run([sys.executable, "-m", "evalhub", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def small(tmp_path_factory, toy_world: Path, toy_manifest: dict) -> dict:
    root = tmp_path_factory.mktemp("pairs")
    golden = root / "small.jsonl"
    golden.write_text("\n".join((toy_world / toy_manifest["golden"]).read_text().splitlines()[:8]) + "\n")
    other = root / "other-base"  # a full model of another base: the toy base's files under another config
    shutil.copytree(toy_world / "base", other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
    return {"root": root, "golden": golden, "other": other,
            "domain": toy_world / toy_manifest["heldout_domain"],
            "tasks": ["--tasks", toy_manifest["task_name"], "--tasks-path", str(toy_world / toy_manifest["tasks_path"]),
                      "--limit", "12"]}


def _compare(small: dict, baseline, candidate, backend: str, name: str, *extra: str) -> dict:
    root = small["root"] / name
    root.mkdir()
    proc = _evalhub("compare", str(baseline), str(candidate), "--golden", str(small["golden"]), "--judge",
                    "reference", "--backend", backend, "--max-new-tokens", "32", "--perplexity-data",
                    f"domain={small['domain']}", "--db", str(root / "s.duckdb"), "--json", str(root / "out.json"),
                    "--report-dir", str(root / "reports"), *extra, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((root / "out.json").read_text())
    with duckdb.connect(str(root / "s.duckdb"), read_only=True) as con:
        kinds = dict(con.execute("SELECT g.role, m.kind FROM generations g JOIN models m USING (model_id) "
                                 "GROUP BY g.role, m.kind").fetchall())
    return {"summary": summary, "kinds": kinds, "stderr": proc.stderr}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["vllm", "hf"])
def test_adapter_against_adapter_and_model_against_adapter(small, toy_adapters, backend):
    weak, strong = toy_adapters[ARENA_STEPS[1]], toy_adapters[ARENA_STEPS[3]]
    # Two adapters of one base: the stronger one wins, its domain text is less surprising; both are adapters.
    # The forgetting benchmarks too (hf: lm-eval's vLLM model scores one sequence a step with a LoRA on CPU).
    pair = _compare(small, weak, strong, backend, f"adapters-{backend}", *(small["tasks"] if backend == "hf" else ()))
    stats = pair["summary"]["judge_stats"]
    assert pair["summary"]["base"] == str(weak.resolve()) and pair["summary"]["tuned"] == str(strong.resolve())
    assert pair["kinds"] == {"base": "adapter", "tuned": "adapter"}
    assert stats["n"] == 8 and stats["win_rate"] > 0.5
    ppl = pair["summary"]["perplexity"]["domain"]
    assert ppl["tuned"] < ppl["base"]
    if backend == "hf":  # paired per item: both adapters scored on the same 12 items
        task = next(iter(pair["summary"]["benchmarks"].values()))
        assert task["base"] is not None and task["tuned"] is not None and task["ci"] is not None
    # Reversed, the verdicts flip: counts are from the candidate's side.
    reverse = _compare(small, strong, weak, backend, f"adapters-reversed-{backend}")
    assert reverse["summary"]["judge_stats"]["wins"] == stats["losses"]
    assert reverse["summary"]["perplexity"]["domain"]["base"] == pytest.approx(ppl["tuned"], rel=1e-6)
    # A full model of another base against an adapter: two loads, one after the other.
    mixed = _compare(small, small["other"], strong, backend, f"mixed-{backend}")
    assert mixed["kinds"] == {"base": "base", "tuned": "adapter"}
    assert mixed["summary"]["judge_stats"]["n"] == 8


@pytest.mark.slow
def test_a_tag_drives_a_gated_compare_and_changed_weights_are_refused(small, toy_adapters, tmp_path):
    db = str(tmp_path / "team.duckdb")
    production, candidate = tmp_path / "production", toy_adapters[ARENA_STEPS[3]]
    shutil.copytree(toy_adapters[ARENA_STEPS[2]], production)

    tagged = _evalhub("tag", "set", "production", str(production), "--db", db, cwd=tmp_path)
    assert tagged.returncode == 0, tagged.stderr
    listed = _evalhub("tag", "list", "--json", "--db", db, cwd=tmp_path)
    tags = json.loads(listed.stdout)
    assert [(t["name"], t["path"], t["kind"]) for t in tags] == [("production", str(production.resolve()), "adapter")]

    gated = _evalhub("compare", "production", str(candidate), "--golden", str(small["golden"]), "--judge",
                     "reference", "--backend", "hf", "--max-new-tokens", "16", "--gate", "--min-win-rate-lower",
                     "0.45", "--db", db, "--json", str(tmp_path / "gate.json"), "--report-dir",
                     str(tmp_path / "reports"), cwd=tmp_path)
    assert gated.returncode in (0, 1), gated.stderr[-3000:]
    summary = json.loads((tmp_path / "gate.json").read_text())
    assert summary["base"] == str(production.resolve()) and summary["gate"]["checks"][0]["name"] == "min_win_rate_lower"
    assert gated.returncode == (0 if summary["gate"]["passed"] else 1)

    # Re-tagging after a merge: production now names the candidate.
    assert _evalhub("tag", "set", "production", str(candidate), "--db", db, cwd=tmp_path).returncode == 0
    assert json.loads(_evalhub("tag", "list", "--json", "--db", db, cwd=tmp_path).stdout)[0]["path"] == \
        str(candidate.resolve())

    # Weights changed since tagging: refused in one line, exit 2, nothing run.
    assert _evalhub("tag", "set", "staging", str(production), "--db", db, cwd=tmp_path).returncode == 0
    weights = production / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    refused = _evalhub("compare", "staging", str(candidate), "--golden", str(small["golden"]), "--judge",
                       "reference", "--db", db, cwd=tmp_path)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "tag 'staging'" in lines[0] and "changed since" in lines[0]

    assert _evalhub("tag", "rm", "staging", "--db", db, cwd=tmp_path).returncode == 0
    missing = _evalhub("tag", "rm", "staging", "--db", db, cwd=tmp_path)
    assert missing.returncode == 2 and "no tag 'staging'" in missing.stderr
    bad = _evalhub("tag", "set", "no/slash", str(candidate), "--db", db, cwd=tmp_path)
    assert bad.returncode == 2 and "tag name" in bad.stderr
