"""A wheel that works anywhere: built from this tree, installed apart from it, run from a folder outside it.

The wheel is built offline from a copy of the tree (so the build leaves nothing in the working tree) and
installed with `pip install --target`; its commands run with that folder on PYTHONPATH, PYTHONSAFEPATH set
(no working folder on sys.path) and a working folder outside the repository, so only the wheel's files can
be found: the editable install's finder comes after PYTHONPATH on the import path, and every test checks
that evalhub was imported from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCES = ["pyproject.toml", "README.md", "MANIFEST.in", "evalhub", "trainers", "golden_sets"]
SHIPPED_CONFIGS = {"toy_sft", "toy_dpo", "toy_rm", "toy_grpo", "qlora_sft"}
EVALHUB = [sys.executable, "-m", "evalhub"]  # with PYTHONPATH and PYTHONSAFEPATH: the wheel's evalhub


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel from a copy of the tree and install it into a folder of its own."""
    root = tmp_path_factory.mktemp("wheel")
    src, dist, site, work = root / "src", root / "dist", root / "site", root / "work"
    src.mkdir()
    work.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=ignore)
        elif path.exists():
            shutil.copy2(path, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(dist), str(src)],
                   check=True, capture_output=True, text=True, timeout=120)
    (wheel,) = dist.glob("evalhub-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=120)
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1", "EVALHUB_DB": str(work / "evalhub.duckdb")}
    return {"wheel": wheel, "site": site, "work": work, "env": env}


def _run(installed: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=installed["work"], env=installed["env"], capture_output=True, text=True,
                          timeout=timeout)


def test_wheel_carries_the_app_configs_golden_sets_and_toy_world(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    assert "evalhub/app/main.py" in names
    assert {f"trainers/configs/{name}.yaml" for name in SHIPPED_CONFIGS} <= names
    golden = {p.name for p in (REPO / "golden_sets").glob("*.jsonl")}
    assert {"toy_zorvish.jsonl", "general_assistant.jsonl"} <= golden
    assert {f"evalhub/golden_sets/{name}" for name in golden | {"README.md"}} <= names
    # The judge protocols are data the judge reads at run time (and the judge calibration set a golden-sets file).
    assert {"evalhub/judge/protocols/pairwise.toml", "evalhub/judge/protocols/arena-hard.toml"} <= names
    assert "evalhub/golden_sets/judge_calibration.jsonl" in names
    # The toy world is generated from these sources (and cached by their hash): the wheel carries them all.
    assert {f"evalhub/toy/{p.name}" for p in (REPO / "evalhub" / "toy").glob("*.py")} <= names
    # Every package of the tree is in the wheel, so a new one cannot be left out unnoticed.
    packages = {p.parent.relative_to(REPO).as_posix() for top in ("evalhub", "trainers")
                for p in (REPO / top).rglob("__init__.py") if "__pycache__" not in p.parts}
    assert {f"{package}/__init__.py" for package in packages} <= names


def test_installed_package_finds_its_files_outside_the_tree(installed):
    site = installed["site"]
    probe = """
import json
import evalhub, trainers
from evalhub import resources
from evalhub.toy.build import world_folder_name
from trainers.config import resolve_config
from streamlit.testing.v1 import AppTest

app = AppTest.from_file(str(resources.app_script()), default_timeout=60).run()
print(json.dumps({
    "evalhub": evalhub.__file__, "trainers": trainers.__file__, "app": str(resources.app_script()),
    "golden": {name: str(path) for name, path in resources.golden_sets().items()},
    "configs": {name: str(resolve_config(name)) for name in ("toy_sft", "toy_dpo", "qlora_sft.yaml")},
    "toy_key": world_folder_name(0),
    "app_errors": [str(e.value) for e in app.exception], "app_info": [m.value for m in app.info],
}))
"""
    proc = _run(installed, sys.executable, "-c", probe)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("evalhub", "trainers", "app"):
        assert Path(found[key]).is_relative_to(site), (key, found[key])
    assert set(found["golden"]) == {p.stem for p in (REPO / "golden_sets").glob("*.jsonl")}
    for name, path in found["golden"].items():
        assert Path(path).is_relative_to(site)
        assert Path(path).read_bytes() == (REPO / "golden_sets" / f"{name}.jsonl").read_bytes()
    assert found["configs"] == {name: str(site / "trainers" / "configs" / f"{Path(name).stem}.yaml")
                                for name in ("toy_sft", "toy_dpo", "qlora_sft.yaml")}
    # Same sources, same toy world key: an installed evalhub reuses the toy world a checkout built.
    from evalhub.toy.build import world_folder_name

    assert found["toy_key"] == world_folder_name(0)
    # The packaged leaderboard script runs from the wheel (an empty store: it says how to fill it).
    assert found["app_errors"] == []
    assert any("No results in" in text for text in found["app_info"]), found["app_info"]


def test_installed_train_names_the_shipped_configs(installed):
    proc = _run(installed, *EVALHUB, "train", "sft", "--config", "missing.yaml")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: missing.yaml: no such config file") and "toy_dpo, toy_grpo, toy_rm, toy_sft" in line


@pytest.mark.parametrize("port", ["-1", "0", "70000"])
def test_app_refuses_a_port_outside_1_to_65535(installed, port):
    proc = _run(installed, *EVALHUB, "app", "--port", port)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line == f"error: --port {port} is not a TCP port; pass --port between 1 and 65535 (default 8501)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_installed_evalhub_app_serves_the_leaderboard(installed):
    port = _free_port()
    command = [str(installed["site"] / "bin" / "evalhub"), "app", "--port", str(port)]
    server = subprocess.Popen(command, cwd=installed["work"], env=installed["env"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline, health = time.monotonic() + 45, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                    health = reply.read().decode()
                break
            except OSError:
                time.sleep(0.3)
        assert health == "ok", f"no health reply (exit {server.poll()})"
        # `evalhub app` became the Streamlit server (exec): it runs the wheel's script, bound to loopback.
        argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode().split("\0")
        assert argv[argv.index("run") + 1] == str(installed["site"] / "evalhub" / "app" / "main.py")
        assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            output, _ = server.communicate()
    assert "Traceback" not in output, output[-3000:]
